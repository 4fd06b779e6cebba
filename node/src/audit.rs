//! The node's audit log: append-only, hash-chained, one entry per line, fail closed.
//!
//! Every request that uses or changes a key, an object or the cluster's configuration is recorded in
//! `DATA_DIR/audit.log` ([`AUDIT_FILE`]), together with every failed login the coordinator reports. Reads
//! (status, lists, the log itself) are not recorded.
//!
//! # Format (version 1)
//!
//! One JSON object per line ([`Entry`]), `\n`-terminated, fields in this order:
//!
//! | field | meaning |
//! |---|---|
//! | `v` | format version, 1 |
//! | `node` | the node that wrote it (a log copied to another node does not verify there) |
//! | `seq` | 0, 1, 2, … — equal to the line number |
//! | `time` | seconds since the Unix epoch |
//! | `prev` | the previous entry's `hash` (64 hex digits; 64 zeros for the first entry) |
//! | `op` | what was done: `generate`, `commit-key`, `abort-key`, `precommit` (FROST nonce commitments handed out ahead of time), `sign`, `evaluate` (split-AES encrypt or decrypt), `update-key`, `destroy`, `put-object`, `reshare`, `commit-reshare`, `abort-reshare`, `set-membership`, `clear-ban`, `set-key-state`, `unseal`, `backup`, `restore`, `login-failed` |
//! | `requester` | who asked: the client's certificate name and PIN user as the coordinator reported them (`alice (user)`), or `coordinator` for the coordinator's own housekeeping |
//! | `purpose` | the client request that caused it (`sign`, `encrypt`, `decrypt`, `create-key`, …), empty if none |
//! | `key` | the key id (hex), if the operation concerns a key |
//! | `session` | the protocol session id (hex), if any: the entries of one operation on different nodes share it |
//! | `input` | SHA-256 of the node request (postcard encoding; for `unseal` of the constant `unseal`, never of a passphrase; for `sign` with the node's own nonce handle set to 0, so that every signer records the same input): never the input itself. Node requests carry no secret (no share, nonce, PIN or plaintext: messages are signed as given, split-AES sends only the DPRF input α) |
//! | `result` | `attempt`, `ok`, or `error KIND: message` |
//! | `hash` | SHA-256 over `"vhsm/audit-entry/v1"` and the postcard encoding of every field above (in order) |
//!
//! # When entries are written
//!
//! Every recorded request gets two entries: an `attempt` entry written and fsynced **before** the node does
//! anything, and a result entry (`ok` / `error …`) written and fsynced before the answer leaves the node —
//! except the requests whose only effect is their answer (a FROST signature share, a split-AES partial
//! evaluation, nonce commitments handed out): they get the result entry alone, written and fsynced before the
//! answer leaves. If the node stops before that entry is on disk, nothing of the operation left the node, so an
//! `attempt` entry would record nothing more (and it cost an fsync on the hot path of every signature). An ECDSA
//! signature is not such a request: its protocol messages leave the node over the mesh while it runs.
//! Appends that arrive together share one fsync (group commit): each append writes its line under the chain's
//! lock, then waits until an fsync that began after its write has finished — the first waiter runs it for all.
//! An append therefore returns only once its own entry is on disk, but concurrent requests do not queue behind
//! one fsync each. An fsync that fails leaves the log refusing every further append (what reached the disk is
//! unknown; the restart verifies the chain). If the
//! attempt cannot be written the request is refused (nothing is signed, evaluated, generated or destroyed); if the
//! result cannot be written the answer is replaced by an error, so no signature share or partial leaves the node
//! unrecorded (a state change that already happened, e.g. a commit, is then recorded only by its attempt — like a
//! store commit whose outcome is unknown). A failed login is one entry (result `ok`: it was recorded).
//!
//! The file is opened by path for every append and its length checked against the node's own count: a log that
//! was removed, replaced (even by a directory), truncated or appended to behind the node's back makes every
//! operation fail until the node is restarted (and the restart checks the chain). A write that fails half-way is
//! cut back; if even that fails the log refuses every further append. The file is created with mode 0600.
//!
//! # At start
//!
//! The whole chain is verified. A torn last line (no newline: a crash during an append, whose operation therefore
//! never ran) is cut off, with a warning. Any other break — a flipped byte, a removed or reordered entry — makes the
//! node **refuse to start**, naming the line: an HSM does not serve with a log it cannot vouch for. The operator
//! keeps the file as evidence and moves it aside; the node then starts a new chain.
//!
//! # What the chain does not do
//!
//! Entries are not MACed: someone who can rewrite the node's whole data directory can recompute a consistent chain.
//! Two things limit that: `vhsm audit verify` cross-checks the nodes (the entries of one session on different nodes
//! must agree on operation, key and input), so a rewritten node disagrees with the others about the operations
//! they shared; and the coordinator's `requester` is asserted, not proven (the node trusts the coordinator for it).
//! A MAC under the node's storage key can be added once the sealed storage key is in place.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vhsm_core::KeyId;
use vhsm_protocols::SessionId;
use vhsm_wire::{client_api::AuditPage, node_api::NodeRequest, NodeId};

/// The audit log's file name inside the node's data directory.
pub const AUDIT_FILE: &str = "audit.log";
/// The entry format version.
pub const FORMAT_VERSION: u8 = 1;
const HASH_DOMAIN: &[u8] = b"vhsm/audit-entry/v1";
const GENESIS: [u8; 32] = [0; 32];
/// Bytes of one [`AuditPage`] at most (a frame is 4 MiB).
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// One audit entry, as stored (one JSON line).
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
    /// SHA-256 of the node request (hex).
    pub input: String,
    /// `attempt`, `ok` or `error KIND: message`.
    pub result: String,
    /// This entry's hash (hex).
    pub hash: String,
}

impl Entry {
    /// The hash this entry's fields (all but `hash`) give.
    pub fn compute_hash(&self) -> [u8; 32] {
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
        // Serializing strings, integers and options into a Vec cannot fail.
        let encoded = postcard::to_allocvec(&body).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        h.update(&encoded);
        h.finalize().into()
    }

    /// Whether this is an attempt entry (written before the work).
    pub fn is_attempt(&self) -> bool {
        self.result == "attempt"
    }
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

/// Verifies `lines` (raw lines of node `node`'s log, starting at line 0) as one chain.
pub fn verify_chain<S: AsRef<str>>(node: NodeId, lines: &[S]) -> ChainReport {
    let mut report = ChainReport {
        head: hex::encode(GENESIS),
        ..ChainReport::default()
    };
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
        if entry.v != FORMAT_VERSION {
            problems.push(format!("unknown format version {}", entry.v));
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
    /// SHA-256 of the request.
    pub input: [u8; 32],
    /// Whether an attempt entry is written before the work (all but a failed-login note and the requests whose
    /// only effect is their answer; see the module docs).
    pub attempt_first: bool,
}

/// The audit description of `request`, or `None` for requests that are not recorded (reads).
pub fn describe(request: &NodeRequest) -> Option<Operation> {
    let op = request.audit_name()?;
    let (key, session) = (request.key_id(), request.session());
    // Never a digest of a passphrase (it could be guessed from it).
    let encoded = match request {
        NodeRequest::Unseal { .. } => b"unseal".to_vec(),
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
    Some(Operation {
        op,
        key,
        session,
        input: Sha256::digest(&encoded).into(),
        attempt_first: !matches!(
            request,
            NodeRequest::LoginFailed { .. }
                | NodeRequest::SignShare { .. }
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

impl AuditLog {
    /// Opens (or creates) the log at `path` for node `node` and verifies its whole chain. A torn last line is cut
    /// off; any other break is an error and the node must not serve.
    pub fn open(path: &Path, node: NodeId) -> Result<Self, AuditError> {
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
            tracing::warn!(
                path = %path.display(),
                bytes = len - keep,
                "audit log ends in a torn entry (a crash during an append: its operation never ran); cutting it off"
            );
            file.set_len(keep as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, "cannot cut off a torn entry", e))?;
            bytes.truncate(keep);
            len = keep;
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let report = verify_chain(node, &lines);
        if let Some(problem) = report.breaks.into_iter().next() {
            return Err(AuditError::Broken {
                path: path.display().to_string(),
                problem,
            });
        }
        let mut head = GENESIS;
        hex::decode_to_slice(&report.head, &mut head)
            .map_err(|e| io_error(path, "bad head hash", e))?;
        Ok(AuditLog {
            node,
            path: path.to_path_buf(),
            chain: Mutex::new(Chain {
                len: len as u64,
                next_seq: lines.len() as u64,
                head,
                poisoned: None,
            }),
            synced: Mutex::new(lines.len() as u64),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
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
            chain.next_seq
        };
        if let Err(e) = file.sync_data() {
            if let Ok(mut chain) = self.chain.lock() {
                chain.poisoned = Some(format!(
                    "an fsync failed ({e}): what reached the disk is unknown; restart the node to verify the log"
                ));
            }
            return Err(io_error(path, "cannot fsync", e));
        }
        *synced = target;
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
            input: hex::encode(operation.input),
            result,
            hash: String::new(),
        };
        let hash = entry.compute_hash();
        entry.hash = hex::encode(hash);
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

    fn op(n: u8) -> Operation {
        Operation {
            op: "sign",
            key: Some(KeyId([n; 16])),
            session: Some(SessionId([n; 32])),
            input: [n; 32],
            attempt_first: true,
        }
    }

    #[test]
    fn appends_verify_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, 2).unwrap();
        for i in 0..5u8 {
            log.append(&op(i), "alice (user)", "sign", "attempt".into())
                .unwrap();
        }
        drop(log);
        let log = AuditLog::open(&path, 2).unwrap();
        let e = log
            .append(&op(9), "alice (user)", "sign", "ok".into())
            .unwrap();
        assert_eq!(e.seq, 5);
        let page = log.page(0, 100).unwrap();
        assert!(page.end);
        let report = verify_chain(2, &page.lines);
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!(report.entries.len(), 6);
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
        let log = std::sync::Arc::new(AuditLog::open(&path, 1).unwrap());
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
        // Every returned append is durable and counted as synced.
        assert_eq!(*log.synced.lock().unwrap(), 320);
        drop(log);
        let log = AuditLog::open(&path, 1).unwrap();
        let report = verify_chain(1, &log.page(0, 1000).unwrap().lines);
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!(report.entries.len(), 320);
    }

    #[test]
    fn a_flipped_byte_is_named_and_the_node_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, 1).unwrap();
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
        let log = AuditLog::open(&path, 1).unwrap();
        log.append(&op(1), "c", "", "ok".into()).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":1,\"node\"").unwrap();
        drop(f);
        let log = AuditLog::open(&path, 1).unwrap();
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
}
