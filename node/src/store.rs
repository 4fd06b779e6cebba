//! The share store: every key's share and metadata, sealed, in an embedded ACID database (redb).
//!
//! Each write is one redb transaction, so a crash leaves the old or the new state, never a torn one. Every record
//! is sealed ([`crate::seal`]) under the node's storage key; nothing is written in the clear. Metadata is kept
//! beside the shares so that the nodes are the source of truth and a coordinator can rebuild its view from them.
//!
//! # Rollback protection: the metadata row
//!
//! Beside the records the store keeps one **metadata row** ([`StoreMeta`], table `meta`), sealed like a record
//! (kind `StoreMeta`, bound to this node and to its generation) and rewritten in the same transaction as every
//! change. It holds:
//!
//! - the **generation**: a counter incremented by every write transaction that changes a record (a key, share,
//!   staged share, object, ban, the membership or a PIN failure counter). The audit log's entries carry the
//!   generation they saw (see [`crate::audit`]), so a `shares.redb` older than the log is detected at unseal;
//! - the **audit head** ([`Head`]): how many audit entries were on disk (fsynced) when the transaction committed,
//!   and the hash of the last of them. Written with every change and, between changes, by [`ShareStore::anchor`]
//!   (the node anchors within about a second of any append). At unseal the log must hold that entry: a log that
//!   was removed, emptied, truncated or replaced is detected. The head is recorded only once the log has been
//!   checked against the store (`AuditLog::check_sealed`); before, a write keeps the head it had;
//! - the **records digest**: the XOR, over every record of every table, of HMAC-SHA-256 under a key derived from
//!   the storage key (label `vhsm/store-digest/v1`) of `"vhsm/store-record/v1" ‖ table name ‖ record key ‖ sealed
//!   record`. Each write updates it (the old record's term out, the new one's in); [`ShareStore::open`] recomputes
//!   it over the whole file and refuses a store whose records do not match. So a single record put back from an
//!   older copy of the file (an older revision of a key's metadata, a share of an older epoch, a removed
//!   tombstone) is detected, although each such record opens on its own. Without the storage key nobody can
//!   compute a term, so no set of swapped records can be made to match.
//!
//! Order with the audit log: an audit entry is fsynced before the store records it as the head, and a store
//! transaction is committed (redb's default durability: fsynced) before the log's entries carry its generation.
//! Hence, after a crash at any point, the store's head is at most the log's durable length, and no entry's
//! generation exceeds the store's: an honest restart always passes. A commit that returned an error may still be
//! on disk: every write transaction reads the metadata row inside the transaction, never from memory.
//!
//! A store written before the metadata row existed has none: it is read as generation 0 with the digest of its
//! records as they are, and gets its row at the first write or anchor. (If its log already records a later
//! generation, the store is an older copy and is refused.)
//!
//! What this does not cover: the **whole** data directory (store and log) replaced by an older copy of both is
//! consistent on its own; the cluster detects it (`vhsm status`: shares behind the key's epoch; `vhsm audit
//! verify`: sessions the node took part in that its log lacks).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use hkdf::hmac::{Hmac, Mac};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, WriteTransaction,
};
use sha2::Sha256;
use vhsm_core::{KeyId, KeyInfo, KeyState, Membership, ObjectId, PinUser, StoredObject};
use vhsm_wire::{node_api::PinCounter, NodeId};
use zeroize::Zeroizing;

use crate::{
    audit::{AuditLog, Head, StoreView},
    records,
    seal::{self, RecordKind, SealError, StorageKey, Subject},
    share::KeyShare,
};

const SHARES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("shares");
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keys");
const BANS: TableDefinition<u16, &[u8]> = TableDefinition::new("bans");
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Shares (and their metadata) of the next epoch, made by a reshare and not yet committed: the current share stays
/// in `shares`/`keys` until the coordinator commits, so a crash at any point leaves a usable key.
const STAGED_SHARES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("staged_shares");
const STAGED_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("staged_keys");
/// The cluster membership this node was last given: one record, [`MEMBERSHIP_RECORD`].
const MEMBERSHIP: TableDefinition<&str, &[u8]> = TableDefinition::new("membership");
const MEMBERSHIP_RECORD: &str = "current";
/// The store's metadata row (see the module docs): one record, [`META_RECORD`]. Not part of the records digest.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_RECORD: &str = "current";
/// The token's PIN failure counters (`crate::pins`): one record per PIN, keyed by [`pin_record_key`].
const PIN_COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pin_counters");
/// The tables whose records the digest covers, keyed by bytes.
const BYTE_TABLES: [TableDefinition<&[u8], &[u8]>; 6] = [
    SHARES,
    KEYS,
    OBJECTS,
    STAGED_SHARES,
    STAGED_KEYS,
    PIN_COUNTERS,
];
const DIGEST_LABEL: &[u8] = b"vhsm/store-digest/v1";
const DIGEST_DOMAIN: &[u8] = b"vhsm/store-record/v1";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (disk full, I/O error, corrupt file), or does not match its sealed metadata.
    #[error("share database: {0}")]
    Database(String),
    /// A record does not open.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// No such key on this node.
    #[error("no key {0} on this node")]
    NotFound(KeyId),
    /// The key id is taken.
    #[error("key {0} already exists on this node")]
    Exists(KeyId),
    /// A lifecycle transition that is not allowed.
    #[error("key {key_id} cannot go from {from} to {to}")]
    Transition {
        /// The key.
        key_id: KeyId,
        /// Its state.
        from: KeyState,
        /// The state asked for.
        to: KeyState,
    },
    /// A request the store refuses (a backup of another node, a key that may not be restored).
    #[error("{0}")]
    Refused(String),
    /// A record opened but its contents are not valid.
    #[error("record for key {key_id} is not valid: {reason}")]
    Corrupt {
        /// The key.
        key_id: KeyId,
        /// What is wrong.
        reason: String,
    },
}

fn db_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The store's metadata row (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMeta {
    /// Incremented by every write transaction that changes a record.
    pub generation: u64,
    /// The audit log's durable head when the row was last written.
    pub audit: Head,
    /// The keyed digest of every record.
    pub records_digest: [u8; 32],
}

/// A key's metadata with its share, opened.
pub struct LoadedKey {
    /// The metadata.
    pub info: KeyInfo,
    /// This node's share.
    pub share: KeyShare,
}

/// The sealed share store of one node.
pub struct ShareStore {
    db: Database,
    path: PathBuf,
    key: StorageKey,
    /// The key of the records digest (derived from the storage key).
    digest_key: Zeroizing<[u8; 32]>,
    node: NodeId,
    /// The node's audit log, whose durable head the metadata row records (none: a store opened on its own, e.g.
    /// by a tool or a test; its writes keep the head they find).
    audit: Option<Arc<AuditLog>>,
    /// The digest of the records as they were at open (the digest of a store that has no metadata row yet).
    open_digest: [u8; 32],
    /// The metadata row as last committed by this process (the anchor's fast path).
    last: Mutex<Option<StoreMeta>>,
    /// Opened active keys, so that signing does not unseal on every request. Entries are zeroized when dropped.
    cache: RwLock<HashMap<KeyId, Arc<LoadedKey>>>,
}

impl std::fmt::Debug for ShareStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareStore")
            .field("node", &self.node)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The digest term of one record.
fn record_term(digest_key: &[u8; 32], table: &str, key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // HMAC takes a key of any length: `new_from_slice` does not fail.
    if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(digest_key) {
        mac.update(DIGEST_DOMAIN);
        mac.update(&[u8::try_from(table.len()).unwrap_or(u8::MAX)]);
        mac.update(table.as_bytes());
        mac.update(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(key);
        mac.update(value);
        out = mac.finalize().into_bytes().into();
    }
    out
}

fn xor_into(acc: &mut [u8; 32], term: &[u8; 32]) {
    for (a, t) in acc.iter_mut().zip(term) {
        *a ^= t;
    }
}

/// One write transaction: every change goes through it, so that the records digest follows, and its commit
/// writes the metadata row (see the module docs). Dropped without [`Writer::commit`], nothing is written.
struct Writer<'a> {
    store: &'a ShareStore,
    txn: WriteTransaction,
    /// The metadata row as this transaction found it, its digest updated by every change.
    meta: StoreMeta,
    /// Whether the row was on disk.
    had_meta: bool,
    /// Whether a record changed.
    changed: bool,
}

impl Writer<'_> {
    fn toggle(&mut self, table: &str, key: &[u8], value: &[u8]) {
        let term = record_term(&self.store.digest_key, table, key, value);
        xor_into(&mut self.meta.records_digest, &term);
    }

    fn get(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(table).map_err(db_error)?;
        let value = t.get(key).map_err(db_error)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    fn put(
        &mut self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let old = {
            let mut t = self.txn.open_table(table).map_err(db_error)?;
            let old = t
                .insert(key, value)
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            old
        };
        if let Some(old) = old {
            self.toggle(table.name(), key, &old);
        }
        self.toggle(table.name(), key, value);
        self.changed = true;
        Ok(())
    }

    /// Removes a record; returns it if there was one.
    fn remove(
        &mut self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let old = {
            let mut t = self.txn.open_table(table).map_err(db_error)?;
            let old = t.remove(key).map_err(db_error)?.map(|v| v.value().to_vec());
            old
        };
        if let Some(old) = &old {
            self.toggle(table.name(), key, old);
            self.changed = true;
        }
        Ok(old)
    }

    fn put_ban(&mut self, peer: NodeId, value: &[u8]) -> Result<(), StoreError> {
        let old = {
            let mut t = self.txn.open_table(BANS).map_err(db_error)?;
            let old = t
                .insert(peer, value)
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            old
        };
        let key = peer.to_be_bytes();
        if let Some(old) = old {
            self.toggle(BANS.name(), &key, &old);
        }
        self.toggle(BANS.name(), &key, value);
        self.changed = true;
        Ok(())
    }

    fn remove_ban(&mut self, peer: NodeId) -> Result<bool, StoreError> {
        let old = {
            let mut t = self.txn.open_table(BANS).map_err(db_error)?;
            let old = t
                .remove(peer)
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            old
        };
        if let Some(old) = &old {
            self.toggle(BANS.name(), &peer.to_be_bytes(), old);
            self.changed = true;
        }
        Ok(old.is_some())
    }

    fn membership(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(MEMBERSHIP).map_err(db_error)?;
        let value = t
            .get(MEMBERSHIP_RECORD)
            .map_err(db_error)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    fn put_membership(&mut self, value: &[u8]) -> Result<(), StoreError> {
        let old = {
            let mut t = self.txn.open_table(MEMBERSHIP).map_err(db_error)?;
            let old = t
                .insert(MEMBERSHIP_RECORD, value)
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            old
        };
        if let Some(old) = old {
            self.toggle(MEMBERSHIP.name(), MEMBERSHIP_RECORD.as_bytes(), &old);
        }
        self.toggle(MEMBERSHIP.name(), MEMBERSHIP_RECORD.as_bytes(), value);
        self.changed = true;
        Ok(())
    }

    /// Commits: if a record changed, the generation goes up by one and the metadata row is rewritten with the
    /// audit log's durable head; `anchor` rewrites the row with the head even if no record changed. A
    /// transaction that changed nothing (and is no anchor) is dropped: nothing is written.
    fn commit_with(mut self, anchor: bool) -> Result<StoreMeta, StoreError> {
        if !self.changed && !anchor {
            return Ok(self.meta);
        }
        if self.changed {
            self.meta.generation += 1;
        }
        self.meta.audit = self.store.head_after(self.meta.audit);
        let record = self.store.seal_meta(&self.meta)?;
        self.txn
            .open_table(META)
            .map_err(db_error)?
            .insert(META_RECORD, &record[..])
            .map_err(db_error)?;
        self.txn.commit().map_err(db_error)?;
        self.store.committed(self.meta);
        Ok(self.meta)
    }

    fn commit(self) -> Result<(), StoreError> {
        self.commit_with(false).map(|_| ())
    }
}

fn read_meta_record(txn: &ReadTransaction) -> Result<Option<Vec<u8>>, StoreError> {
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db_error(e)),
    };
    let value = table
        .get(META_RECORD)
        .map_err(db_error)?
        .map(|v| v.value().to_vec());
    Ok(value)
}

impl ShareStore {
    /// Opens (or creates) the store at `path` on its own, without an audit log: its writes keep the audit head
    /// they find (for tools and tests; the node opens it with [`ShareStore::open_with_audit`]). Refused if its
    /// records do not match its sealed metadata row.
    pub fn open(path: &Path, key: StorageKey, node: NodeId) -> Result<Self, StoreError> {
        Self::open_with_audit(path, key, node, None)
    }

    /// Opens (or creates) the store at `path` for node `node`, whose audit log is `audit` (see the module docs).
    /// Refused if its records do not match its sealed metadata row (a record put back from an older copy, removed
    /// or added behind the node's back).
    pub fn open_with_audit(
        path: &Path,
        key: StorageKey,
        node: NodeId,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_error)?;
        for table in BYTE_TABLES {
            txn.open_table(table).map_err(db_error)?;
        }
        txn.open_table(BANS).map_err(db_error)?;
        txn.open_table(MEMBERSHIP).map_err(db_error)?;
        txn.open_table(META).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        let digest_key = key.derive(DIGEST_LABEL);
        let mut store = ShareStore {
            db,
            path: path.to_path_buf(),
            key,
            digest_key,
            node,
            audit,
            open_digest: [0; 32],
            last: Mutex::new(None),
            cache: RwLock::new(HashMap::new()),
        };
        let (meta, digest) = {
            let txn = store.db.begin_read().map_err(db_error)?;
            (store.read_meta(&txn)?, store.digest_of(&txn)?)
        };
        if let Some(meta) = &meta {
            if meta.records_digest != digest {
                return Err(StoreError::Database(format!(
                    "{}: its records do not match the digest sealed in its metadata row (generation {}): a record \
                     was put back from an older copy, removed or added behind the node's back. Keep the file as \
                     evidence; put the current one back, or move the data directory aside and repair the node \
                     (vhsm node repair {node})",
                    path.display(),
                    meta.generation
                )));
            }
        }
        store.open_digest = digest;
        *store.last.get_mut().unwrap_or_else(|p| p.into_inner()) = meta;
        Ok(store)
    }

    /// The digest of every record, as `txn` sees them.
    fn digest_of(&self, txn: &ReadTransaction) -> Result<[u8; 32], StoreError> {
        let mut digest = [0u8; 32];
        for def in BYTE_TABLES {
            let table = txn.open_table(def).map_err(db_error)?;
            for entry in table.iter().map_err(db_error)? {
                let (k, v) = entry.map_err(db_error)?;
                xor_into(
                    &mut digest,
                    &record_term(&self.digest_key, def.name(), k.value(), v.value()),
                );
            }
        }
        let bans = txn.open_table(BANS).map_err(db_error)?;
        for entry in bans.iter().map_err(db_error)? {
            let (k, v) = entry.map_err(db_error)?;
            let peer: NodeId = k.value();
            xor_into(
                &mut digest,
                &record_term(
                    &self.digest_key,
                    BANS.name(),
                    &peer.to_be_bytes(),
                    v.value(),
                ),
            );
        }
        let membership = txn.open_table(MEMBERSHIP).map_err(db_error)?;
        for entry in membership.iter().map_err(db_error)? {
            let (k, v) = entry.map_err(db_error)?;
            let name: &str = k.value();
            xor_into(
                &mut digest,
                &record_term(
                    &self.digest_key,
                    MEMBERSHIP.name(),
                    name.as_bytes(),
                    v.value(),
                ),
            );
        }
        Ok(digest)
    }

    fn seal_meta(&self, meta: &StoreMeta) -> Result<Vec<u8>, StoreError> {
        let plain = records::encode_store_meta(meta).map_err(db_error)?;
        Ok(seal::seal_bound(
            &self.key,
            self.node,
            RecordKind::StoreMeta,
            Subject::Node(self.node),
            0,
            meta.generation,
            &plain,
        ))
    }

    fn open_meta(&self, record: &[u8]) -> Result<StoreMeta, StoreError> {
        let (binding, plain) = seal::open_bound(
            &self.key,
            self.node,
            RecordKind::StoreMeta,
            Subject::Node(self.node),
            record,
        )?;
        let meta = records::decode_store_meta(&plain)
            .map_err(|e| StoreError::Database(format!("metadata row: {e}")))?;
        if binding.revision != Some(meta.generation) {
            return Err(StoreError::Database(
                "metadata row does not match its sealed generation".into(),
            ));
        }
        Ok(meta)
    }

    fn read_meta(&self, txn: &ReadTransaction) -> Result<Option<StoreMeta>, StoreError> {
        read_meta_record(txn)?
            .map(|r| self.open_meta(&r))
            .transpose()
    }

    /// Starts a write transaction (see [`Writer`]).
    fn begin(&self) -> Result<Writer<'_>, StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let found = {
            let table = txn.open_table(META).map_err(db_error)?;
            let found = table
                .get(META_RECORD)
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            found
        };
        let (meta, had_meta) = match found {
            Some(record) => (self.open_meta(&record)?, true),
            // No row yet: no write committed since open (every one writes it), so the records are as at open.
            None => (
                StoreMeta {
                    records_digest: self.open_digest,
                    ..StoreMeta::default()
                },
                false,
            ),
        };
        Ok(Writer {
            store: self,
            txn,
            meta,
            had_meta,
            changed: false,
        })
    }

    /// The audit head a transaction records, given the one it found: the log's durable head once the log was
    /// checked against this store, else the one found.
    fn head_after(&self, found: Head) -> Head {
        match &self.audit {
            Some(audit) if audit.is_keyed() => {
                let head = audit.durable_head();
                if head.entries >= found.entries {
                    head
                } else {
                    found
                }
            }
            _ => found,
        }
    }

    fn committed(&self, meta: StoreMeta) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(meta);
        }
        if let Some(audit) = &self.audit {
            audit.note_generation(meta.generation);
        }
    }

    /// Records the audit log's durable head in the metadata row if it moved since the row was written (no record
    /// changes, the generation stays). Returns whether it wrote. A no-op until the log was checked against this
    /// store.
    pub fn anchor(&self) -> Result<bool, StoreError> {
        let Some(audit) = self.audit.as_ref().filter(|a| a.is_keyed()) else {
            return Ok(false);
        };
        let head = audit.durable_head();
        let last = self.last.lock().ok().and_then(|l| *l);
        if last.is_some_and(|m| m.audit == head) {
            return Ok(false);
        }
        let writer = self.begin()?;
        if writer.had_meta && writer.meta.audit == head {
            if let Ok(mut l) = self.last.lock() {
                *l = Some(writer.meta);
            }
            return Ok(false);
        }
        writer.commit_with(true)?;
        Ok(true)
    }

    /// The metadata row as it is on disk (`None`: none yet).
    pub fn meta(&self) -> Result<Option<StoreMeta>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        self.read_meta(&txn)
    }

    /// What the audit log is checked against at unseal: the file, its generation and audit head, and how many key
    /// records it holds (current, staged and tombstones).
    pub fn view(&self) -> Result<StoreView, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = self.read_meta(&txn)?.unwrap_or_default();
        let mut key_records = 0u64;
        for def in [KEYS, STAGED_KEYS] {
            key_records += txn
                .open_table(def)
                .map_err(db_error)?
                .len()
                .map_err(db_error)?;
        }
        Ok(StoreView {
            path: self.path.clone(),
            generation: meta.generation,
            head: meta.audit,
            key_records: usize::try_from(key_records).unwrap_or(usize::MAX),
        })
    }

    fn seal_info(&self, info: &KeyInfo) -> Result<Vec<u8>, StoreError> {
        let plain =
            Zeroizing::new(
                records::encode_key_info(info).map_err(|e| StoreError::Corrupt {
                    key_id: info.id,
                    reason: e.to_string(),
                })?,
            );
        Ok(seal::seal_bound(
            &self.key,
            self.node,
            RecordKind::KeyInfo,
            Subject::Key(info.id),
            info.epoch,
            info.revision,
            &plain,
        ))
    }

    fn open_info(&self, key_id: KeyId, record: &[u8]) -> Result<KeyInfo, StoreError> {
        let (binding, plain) = seal::open_bound(
            &self.key,
            self.node,
            RecordKind::KeyInfo,
            Subject::Key(key_id),
            record,
        )?;
        let corrupt = |reason: String| StoreError::Corrupt { key_id, reason };
        let info =
            records::decode_key_info(&plain).map_err(|e| corrupt(format!("metadata: {e}")))?;
        if info.id != key_id
            || info.epoch != binding.epoch
            || binding.revision.is_some_and(|r| r != info.revision)
        {
            return Err(corrupt("metadata does not match its record".into()));
        }
        Ok(info)
    }

    fn seal_share(&self, info: &KeyInfo, share: &KeyShare) -> Vec<u8> {
        seal::seal(
            &self.key,
            self.node,
            RecordKind::Share,
            Subject::Key(info.id),
            info.epoch,
            &share.to_bytes(),
        )
    }

    /// Stores a freshly generated share with its metadata (state `Pending`). Refuses an existing key id.
    pub fn insert_pending(&self, info: &KeyInfo, share: &KeyShare) -> Result<(), StoreError> {
        let info_record = self.seal_info(info)?;
        let share_record = self.seal_share(info, share);
        let mut w = self.begin()?;
        if w.get(KEYS, &info.id.0)?.is_some() {
            return Err(StoreError::Exists(info.id));
        }
        w.put(KEYS, &info.id.0, &info_record)?;
        w.put(SHARES, &info.id.0, &share_record)?;
        w.commit()
    }

    /// Gives a pending key its first lifecycle state (active or pre-active). Committing a key that is committed
    /// already is a no-op (the coordinator may retry).
    pub fn activate(&self, key_id: KeyId, state: KeyState) -> Result<KeyInfo, StoreError> {
        if !matches!(state, KeyState::Active | KeyState::PreActive) {
            return Err(StoreError::Corrupt {
                key_id,
                reason: format!("a key is committed active or pre-active, not {state}"),
            });
        }
        let mut w = self.begin()?;
        let record = w
            .get(KEYS, &key_id.0)?
            .ok_or(StoreError::NotFound(key_id))?;
        let mut info = self.open_info(key_id, &record)?;
        if info.state == KeyState::Pending {
            info.state = state;
            let sealed = self.seal_info(&info)?;
            w.put(KEYS, &key_id.0, &sealed)?;
        }
        w.commit()?;
        self.forget_cached(key_id);
        Ok(info)
    }

    /// A lifecycle transition (not destruction: [`ShareStore::destroy_key`]); refused unless
    /// [`KeyState::can_become`] allows it. Setting the state the key is in already is a no-op.
    pub fn set_state(&self, key_id: KeyId, next: KeyState) -> Result<KeyInfo, StoreError> {
        let mut w = self.begin()?;
        let record = w
            .get(KEYS, &key_id.0)?
            .ok_or(StoreError::NotFound(key_id))?;
        let mut info = self.open_info(key_id, &record)?;
        if info.state == next {
            return Ok(info);
        }
        if next == KeyState::Destroyed || !info.state.can_become(next) {
            return Err(StoreError::Transition {
                key_id,
                from: info.state,
                to: next,
            });
        }
        info.state = next;
        info.revision += 1;
        let sealed = self.seal_info(&info)?;
        w.put(KEYS, &key_id.0, &sealed)?;
        w.commit()?;
        self.forget_cached(key_id);
        Ok(info)
    }

    fn forget_cached(&self, key_id: KeyId) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&key_id);
        }
    }

    /// Deletes a pending key. Returns whether there was one. An active key is never deleted this way.
    pub fn abort_pending(&self, key_id: KeyId) -> Result<bool, StoreError> {
        self.remove_if(KEYS, SHARES, key_id, |info| info.state == KeyState::Pending)
    }

    /// Deletes `key_id`'s metadata and share from one pair of tables (current, or staged) in one transaction, if
    /// `condition` holds for the metadata. Returns whether they were deleted.
    fn remove_if(
        &self,
        keys_table: TableDefinition<&[u8], &[u8]>,
        shares_table: TableDefinition<&[u8], &[u8]>,
        key_id: KeyId,
        condition: impl FnOnce(&KeyInfo) -> bool,
    ) -> Result<bool, StoreError> {
        let mut w = self.begin()?;
        let Some(record) = w.get(keys_table, &key_id.0)? else {
            return Ok(false);
        };
        if !condition(&self.open_info(key_id, &record)?) {
            return Ok(false);
        }
        w.remove(keys_table, &key_id.0)?;
        w.remove(shares_table, &key_id.0)?;
        w.commit()?;
        Ok(true)
    }

    /// The metadata in one table (current keys, or staged ones).
    fn infos_in(&self, table: TableDefinition<&[u8], &[u8]>) -> Result<Vec<KeyInfo>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(table).map_err(db_error)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (k, v) = entry.map_err(db_error)?;
            let key_id = KeyId(k.value().try_into().map_err(|_| {
                StoreError::Database("a key id in the database is not 16 bytes".into())
            })?);
            out.push(self.open_info(key_id, v.value())?);
        }
        Ok(out)
    }
    /// Every key's metadata, pending ones included.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        self.infos_in(KEYS)
    }

    /// A key with this node's share, opened, in whatever state has one (pending included: the caller checks what
    /// the state allows).
    pub fn active_key(&self, key_id: KeyId) -> Result<Arc<LoadedKey>, StoreError> {
        if let Ok(cache) = self.cache.read() {
            if let Some(hit) = cache.get(&key_id) {
                return Ok(hit.clone());
            }
        }
        let txn = self.db.begin_read().map_err(db_error)?;
        let keys = txn.open_table(KEYS).map_err(db_error)?;
        let info = match keys.get(&key_id.0[..]).map_err(db_error)? {
            Some(record) => self.open_info(key_id, record.value())?,
            None => return Err(StoreError::NotFound(key_id)),
        };
        if info.state == KeyState::Destroyed {
            return Err(StoreError::NotFound(key_id));
        }
        let shares = txn.open_table(SHARES).map_err(db_error)?;
        let record = shares
            .get(&key_id.0[..])
            .map_err(db_error)?
            .ok_or_else(|| StoreError::Corrupt {
                key_id,
                reason: "metadata without a share".into(),
            })?;
        let (epoch, plain) = seal::open(
            &self.key,
            self.node,
            RecordKind::Share,
            Subject::Key(key_id),
            record.value(),
        )?;
        let corrupt = |reason: String| StoreError::Corrupt { key_id, reason };
        if epoch != info.epoch {
            return Err(corrupt(format!(
                "share epoch {epoch} but metadata epoch {}",
                info.epoch
            )));
        }
        let share = KeyShare::from_bytes(&plain).map_err(|e| corrupt(e.to_string()))?;
        if !share.is_for(info.algorithm) {
            return Err(corrupt(format!("share is not a {} share", info.algorithm)));
        }
        if share.public_key() != info.public_key {
            return Err(corrupt(
                "share does not belong to the key's public key".into(),
            ));
        }
        if share.public_package() != info.public_package {
            return Err(corrupt(
                "share does not match the key's public key package".into(),
            ));
        }
        if share.participant() != self.node {
            return Err(corrupt(format!(
                "share belongs to participant {}",
                share.participant()
            )));
        }
        let loaded = Arc::new(LoadedKey { info, share });
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key_id, loaded.clone());
        }
        Ok(loaded)
    }
}

impl ShareStore {
    /// Replaces an active key's label and attributes with those of `update`, whose revision must be newer; every
    /// other field must match what this node holds. Returns the stored metadata.
    pub fn update_key(&self, update: &KeyInfo) -> Result<KeyInfo, StoreError> {
        let key_id = update.id;
        let mut w = self.begin()?;
        let record = w
            .get(KEYS, &key_id.0)?
            .ok_or(StoreError::NotFound(key_id))?;
        let mut info = self.open_info(key_id, &record)?;
        if !info.state.has_shares() {
            return Err(StoreError::NotFound(key_id));
        }
        let mut expected = update.clone();
        expected.label = info.label.clone();
        expected.attributes = info.attributes.clone();
        expected.revision = info.revision;
        if expected != info {
            return Err(StoreError::Corrupt {
                key_id,
                reason: "an update may change only the label and attributes".into(),
            });
        }
        if update.revision > info.revision {
            info.label = update.label.clone();
            info.attributes = update.attributes.clone();
            info.revision = update.revision;
            let sealed = self.seal_info(&info)?;
            w.put(KEYS, &key_id.0, &sealed)?;
        }
        w.commit()?;
        self.forget_cached(key_id);
        Ok(info)
    }

    /// Destroys a key: deletes its share (and a staged one), keeping the metadata as a **tombstone** in state
    /// `Destroyed`, which nothing removes — so the key cannot come back, from a backup or otherwise. Destroying a
    /// tombstone changes nothing; a pending key (its generation never committed) leaves no tombstone. Returns
    /// whether there was a share. The sealed share's bytes leave the database file's live pages; the opened copy
    /// in memory is zeroized when dropped.
    pub fn destroy_key(&self, key_id: KeyId) -> Result<bool, StoreError> {
        let mut w = self.begin()?;
        let current = match w.get(KEYS, &key_id.0)? {
            Some(record) => Some(self.open_info(key_id, &record)?),
            None => None,
        };
        let had_share = w.remove(SHARES, &key_id.0)?.is_some();
        let staged = w.remove(STAGED_KEYS, &key_id.0)?.is_some();
        w.remove(STAGED_SHARES, &key_id.0)?;
        match current {
            // A key that was generated keeps a tombstone: it cannot come back (e.g. from a backup).
            Some(mut info) if info.state.has_shares() => {
                info.state = KeyState::Destroyed;
                info.revision += 1;
                let sealed = self.seal_info(&info)?;
                w.put(KEYS, &key_id.0, &sealed)?;
            }
            // A tombstone stays (issue 14: two DestroyKeys used to delete it, and an old backup then brought
            // the key back).
            Some(info) if info.state == KeyState::Destroyed => {}
            Some(_) => {
                w.remove(KEYS, &key_id.0)?;
            }
            None => {}
        }
        w.commit()?;
        self.forget_cached(key_id);
        Ok(had_share || staged)
    }

    /// Releases this node's share of a key that moved on to `epoch` without it (a reshare to a committee this
    /// node is not in): its share and metadata of an older epoch are deleted, and the key may later be reshared
    /// to this node again. Refused for the epoch this node holds or a later one (it is a holder), and for a
    /// destroyed key's tombstone, which stays. Returns whether there was a share.
    pub fn release_share(&self, key_id: KeyId, epoch: u64) -> Result<bool, StoreError> {
        let mut w = self.begin()?;
        let Some(record) = w.get(KEYS, &key_id.0)? else {
            return Ok(false);
        };
        let current = self.open_info(key_id, &record)?;
        if current.state == KeyState::Destroyed {
            return Err(StoreError::Refused(format!(
                "key {key_id} was destroyed: its tombstone stays"
            )));
        }
        if current.epoch >= epoch {
            return Err(StoreError::Refused(format!(
                "this node holds key {key_id} at epoch {}: a share of epoch {epoch} or later is not released",
                current.epoch
            )));
        }
        w.remove(KEYS, &key_id.0)?;
        let released = w.remove(SHARES, &key_id.0)?.is_some();
        w.commit()?;
        self.forget_cached(key_id);
        Ok(released)
    }

    /// Stages the share of the next epoch made by a reshare: `info` (state `Active`, its epoch one more than the
    /// current share's, or more for a holder behind the key's epoch) and this node's new share. The current share,
    /// if this node has one, stays in force until [`ShareStore::commit_staged`]. A node without the key (a new
    /// holder, or one being repaired) may stage any epoch. A staged share of the same epoch from an earlier, failed
    /// attempt is replaced.
    pub fn stage(&self, info: &KeyInfo, share: &KeyShare) -> Result<(), StoreError> {
        let key_id = info.id;
        let corrupt = |reason: String| StoreError::Corrupt { key_id, reason };
        if !info.state.has_shares() {
            return Err(corrupt(format!("a {} key cannot be staged", info.state)));
        }
        if share.participant() != self.node || share.public_key() != info.public_key {
            return Err(corrupt(
                "the staged share does not belong to this node and key".into(),
            ));
        }
        let info_record = self.seal_info(info)?;
        let share_record = self.seal_share(info, share);
        let mut w = self.begin()?;
        if let Some(record) = w.get(KEYS, &key_id.0)? {
            let current = self.open_info(key_id, &record)?;
            if current.state == KeyState::Destroyed {
                return Err(corrupt("the key was destroyed".into()));
            }
            if current.state == KeyState::Pending {
                return Err(corrupt(
                    "the key's generation was never committed: it cannot be reshared".into(),
                ));
            }
            // A share is replaced only by a later epoch's. A holder that is behind (its data rolled back to before
            // a refresh) is repaired with the epoch after the key's, more than one past its own.
            if current.state.has_shares() && current.epoch >= info.epoch {
                return Err(corrupt(format!(
                    "cannot stage epoch {} over epoch {}",
                    info.epoch, current.epoch
                )));
            }
            if current.public_key != info.public_key || current.algorithm != info.algorithm {
                return Err(corrupt("a reshare may not change the key".into()));
            }
        }
        w.put(STAGED_KEYS, &key_id.0, &info_record)?;
        w.put(STAGED_SHARES, &key_id.0, &share_record)?;
        w.commit()
    }

    /// Makes the staged share of `epoch` the key's share, erasing the previous one, in one transaction. Committing
    /// an epoch that is already in force is a no-op (the coordinator may retry). Returns the key's metadata.
    pub fn commit_staged(&self, key_id: KeyId, epoch: u64) -> Result<KeyInfo, StoreError> {
        let mut w = self.begin()?;
        let current = match w.get(KEYS, &key_id.0)? {
            Some(record) => Some(self.open_info(key_id, &record)?),
            None => None,
        };
        if let Some(current) = current.as_ref().filter(|c| c.epoch == epoch) {
            if current.state.has_shares() {
                return Ok(current.clone());
            }
        }
        let record = w
            .get(STAGED_KEYS, &key_id.0)?
            .ok_or(StoreError::NotFound(key_id))?;
        let staged = self.open_info(key_id, &record)?;
        if staged.epoch != epoch {
            return Err(StoreError::Corrupt {
                key_id,
                reason: format!("staged epoch is {}, not {epoch}", staged.epoch),
            });
        }
        let share_record =
            w.remove(STAGED_SHARES, &key_id.0)?
                .ok_or_else(|| StoreError::Corrupt {
                    key_id,
                    reason: "staged metadata without a share".into(),
                })?;
        w.remove(STAGED_KEYS, &key_id.0)?;
        w.put(KEYS, &key_id.0, &record)?;
        w.put(SHARES, &key_id.0, &share_record)?;
        w.commit()?;
        self.forget_cached(key_id);
        Ok(staged)
    }

    /// Drops the staged share of `epoch` (a reshare that did not complete). Returns whether there was one.
    pub fn abort_staged(&self, key_id: KeyId, epoch: u64) -> Result<bool, StoreError> {
        self.remove_if(STAGED_KEYS, STAGED_SHARES, key_id, |info| {
            info.epoch == epoch
        })
    }

    /// The metadata of every staged (not yet committed) share.
    pub fn staged(&self) -> Result<Vec<KeyInfo>, StoreError> {
        self.infos_in(STAGED_KEYS)
    }

    /// Stores an object if it is newer than this node's copy. Returns whether it was stored.
    pub fn put_object(&self, object: &StoredObject) -> Result<bool, StoreError> {
        let mut w = self.begin()?;
        let current = match w.get(OBJECTS, &object.id.0)? {
            Some(record) => Some(self.open_object(object.id, &record)?),
            None => None,
        };
        if current.is_some_and(|c| c.version >= object.version) {
            return Ok(false);
        }
        let plain = Zeroizing::new(
            records::encode_object(object).map_err(|e| StoreError::Database(e.to_string()))?,
        );
        let record = seal::seal_bound(
            &self.key,
            self.node,
            RecordKind::Object,
            Subject::Object(object.id),
            0,
            object.version,
            &plain,
        );
        w.put(OBJECTS, &object.id.0, &record)?;
        w.commit()?;
        Ok(true)
    }

    fn open_object(&self, id: ObjectId, record: &[u8]) -> Result<StoredObject, StoreError> {
        let (binding, plain) = seal::open_bound(
            &self.key,
            self.node,
            RecordKind::Object,
            Subject::Object(id),
            record,
        )?;
        let bad = |reason: String| StoreError::Database(format!("object {id}: {reason}"));
        let object = records::decode_object(&plain).map_err(|e| bad(e.to_string()))?;
        if object.id != id || binding.revision.is_some_and(|v| v != object.version) {
            return Err(bad("record does not match its id and version".into()));
        }
        Ok(object)
    }

    /// Every stored object, tombstones included.
    pub fn objects(&self) -> Result<Vec<StoredObject>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(OBJECTS).map_err(db_error)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (k, v) = entry.map_err(db_error)?;
            let id = ObjectId(
                k.value()
                    .try_into()
                    .map_err(|_| StoreError::Database("an object id is not 16 bytes".into()))?,
            );
            out.push(self.open_object(id, v.value())?);
        }
        Ok(out)
    }

    /// Records that this node refuses to run OT-based protocols with `peer` (why, for the operator).
    pub fn ban(&self, peer: NodeId, reason: &str) -> Result<(), StoreError> {
        let record = seal::seal(
            &self.key,
            self.node,
            RecordKind::Ban,
            Subject::Node(peer),
            0,
            reason.as_bytes(),
        );
        let mut w = self.begin()?;
        w.put_ban(peer, &record)?;
        w.commit()
    }

    /// Clears a ban. Returns whether there was one.
    pub fn unban(&self, peer: NodeId) -> Result<bool, StoreError> {
        let mut w = self.begin()?;
        let removed = w.remove_ban(peer)?;
        w.commit()?;
        Ok(removed)
    }

    /// The banned peers. A ban record that does not open counts as a ban (fail closed) and is logged.
    pub fn banned(&self) -> Result<Vec<NodeId>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(BANS).map_err(db_error)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (peer, record) = entry.map_err(db_error)?;
            let peer = peer.value();
            if let Err(e) = seal::open(
                &self.key,
                self.node,
                RecordKind::Ban,
                Subject::Node(peer),
                record.value(),
            ) {
                tracing::error!(peer, error = %e, "a ban record does not open; treating the peer as banned");
            }
            out.push(peer);
        }
        Ok(out)
    }

    /// The newest cluster membership this node was given, if any (sealed like every record; its version is bound
    /// as the record's epoch).
    pub fn membership(&self) -> Result<Option<Membership>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = match txn.open_table(MEMBERSHIP) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_error(e)),
        };
        let record = match table.get(MEMBERSHIP_RECORD).map_err(db_error)? {
            Some(record) => record.value().to_vec(),
            None => return Ok(None),
        };
        self.open_membership(&record).map(Some)
    }

    /// Keeps `membership` if it is newer than the stored one (or there is none), in one transaction. Returns
    /// whether it was stored.
    pub fn put_membership(&self, membership: &Membership) -> Result<bool, StoreError> {
        let plain = Zeroizing::new(
            records::encode_membership(membership)
                .map_err(|e| StoreError::Database(e.to_string()))?,
        );
        let record = seal::seal(
            &self.key,
            self.node,
            RecordKind::Membership,
            Subject::Node(self.node),
            membership.version,
            &plain,
        );
        let mut w = self.begin()?;
        if let Some(current) = w.membership()? {
            if self.open_membership(&current)?.version >= membership.version {
                return Ok(false);
            }
        }
        w.put_membership(&record)?;
        w.commit()?;
        Ok(true)
    }

    fn open_membership(&self, record: &[u8]) -> Result<Membership, StoreError> {
        let (version, plain) = seal::open(
            &self.key,
            self.node,
            RecordKind::Membership,
            Subject::Node(self.node),
            record,
        )?;
        let bad = |reason: String| StoreError::Database(format!("stored membership: {reason}"));
        let membership = records::decode_membership(&plain).map_err(|e| bad(e.to_string()))?;
        if membership.version != version {
            return Err(bad("record does not match its version".into()));
        }
        Ok(membership)
    }
}
/// The key of `user`'s failure counter in [`PIN_COUNTERS`].
fn pin_record_key(user: PinUser) -> &'static [u8] {
    match user {
        PinUser::User => b"user",
        PinUser::SecurityOfficer => b"so",
    }
}

/// The token's PIN failure counters ([`crate::pins`]).
impl ShareStore {
    /// The failure counter of `user`'s PIN (zero, unlocked, if none was ever written).
    pub fn pin_counter(&self, user: PinUser) -> Result<PinCounter, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = match txn.open_table(PIN_COUNTERS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(PinCounter::default()),
            Err(e) => return Err(db_error(e)),
        };
        let record = table
            .get(pin_record_key(user))
            .map_err(db_error)?
            .map(|v| v.value().to_vec());
        record
            .map(|r| self.open_pin_counter(user, &r))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Changes `user`'s failure counter in one transaction: `change` gets the counter as the transaction reads it
    /// and returns the new one (`None`: leave it, nothing is written). Returns the counter as read and as left.
    /// Concurrent changes are serialised by the database, so each sees the one before it.
    pub fn update_pin_counter(
        &self,
        user: PinUser,
        change: impl FnOnce(PinCounter) -> Option<PinCounter>,
    ) -> Result<(PinCounter, PinCounter), StoreError> {
        let mut w = self.begin()?;
        let key = pin_record_key(user);
        let before = match w.get(PIN_COUNTERS, key)? {
            Some(record) => self.open_pin_counter(user, &record)?,
            None => PinCounter::default(),
        };
        let Some(after) = change(before) else {
            return Ok((before, before));
        };
        if after == before {
            return Ok((before, before));
        }
        let plain =
            records::encode_pin_counter(&after).map_err(|e| StoreError::Database(e.to_string()))?;
        let record = seal::seal(
            &self.key,
            self.node,
            RecordKind::PinCounter,
            Subject::Pin(user),
            0,
            &plain,
        );
        w.put(PIN_COUNTERS, key, &record)?;
        w.commit()?;
        Ok((before, after))
    }

    fn open_pin_counter(&self, user: PinUser, record: &[u8]) -> Result<PinCounter, StoreError> {
        let (epoch, plain) = seal::open(
            &self.key,
            self.node,
            RecordKind::PinCounter,
            Subject::Pin(user),
            record,
        )?;
        let bad = |reason: String| {
            StoreError::Database(format!(
                "the {} failure counter: {reason}",
                crate::pins::pin_name(user)
            ))
        };
        if epoch != 0 {
            return Err(bad(format!("sealed at epoch {epoch}, not 0")));
        }
        records::decode_pin_counter(&plain).map_err(|e| bad(e.to_string()))
    }
}

/// Backup and restore ([`crate::backup`]).
impl ShareStore {
    /// A backup file of every key with shares (its current epoch), every object and the membership.
    pub fn backup(&self, created_unix: u64) -> Result<Vec<u8>, StoreError> {
        let mut header = crate::backup::BackupHeader {
            format: crate::backup::FORMAT_VERSION,
            node: self.node,
            created_unix,
            keys: Vec::new(),
        };
        let mut records = Vec::new();
        {
            let txn = self.db.begin_read().map_err(db_error)?;
            let keys = txn.open_table(KEYS).map_err(db_error)?;
            let shares = txn.open_table(SHARES).map_err(db_error)?;
            for entry in keys.iter().map_err(db_error)? {
                let (k, v) = entry.map_err(db_error)?;
                let key_id = KeyId(k.value().try_into().map_err(|_| {
                    StoreError::Database("a key id in the database is not 16 bytes".into())
                })?);
                let info = self.open_info(key_id, v.value())?;
                if info.state == KeyState::Pending {
                    continue;
                }
                // A key without a share record (a destroyed key's tombstone) has nothing to back up.
                let Some(share) = shares.get(&key_id.0[..]).map_err(db_error)? else {
                    continue;
                };
                let share = share.value().to_vec();
                header.keys.push(crate::backup::BackupKey {
                    id: key_id,
                    epoch: info.epoch,
                    state: info.state,
                });
                records.push(crate::backup::KeyRecords {
                    id: key_id,
                    info: v.value().to_vec(),
                    share,
                });
            }
        }
        let body = crate::backup::BackupBody {
            header: header.clone(),
            keys: records,
            objects: self.objects()?,
            membership: self.membership()?,
        };
        let plain =
            crate::backup::encode_body(&body).map_err(|e| StoreError::Database(e.to_string()))?;
        let sealed = seal::seal(
            &self.key,
            self.node,
            RecordKind::Backup,
            Subject::Node(self.node),
            created_unix,
            &plain,
        );
        crate::backup::write_file(&header, &sealed).map_err(|e| StoreError::Database(e.to_string()))
    }

    /// Restores `keys` from a backup file this node wrote: the file must open under this node's storage key, and
    /// each key's records must open and match. The keys are written in one transaction; a key this node holds at
    /// a newer epoch, or has destroyed, is refused (nothing is written). Objects and the membership are then kept
    /// where newer than this node's (as `put_object`/`put_membership` do). Returns the restored keys' metadata.
    pub fn restore(&self, file: &[u8], keys: &[KeyId]) -> Result<Vec<KeyInfo>, StoreError> {
        let refused = |why: String| StoreError::Refused(why);
        let (header, sealed) =
            crate::backup::read_header(file).map_err(|e| refused(e.to_string()))?;
        if header.node != self.node {
            return Err(refused(format!(
                "this backup was written by node {}, not node {}",
                header.node, self.node
            )));
        }
        let (_, plain) = seal::open(
            &self.key,
            self.node,
            RecordKind::Backup,
            Subject::Node(self.node),
            sealed,
        )
        .map_err(|_| {
            refused(format!(
                "the backup does not open under node {}'s storage key: it was altered, or written by another \
                 node or under another storage key",
                self.node
            ))
        })?;
        let body = crate::backup::decode_body(&plain).map_err(|e| refused(e.to_string()))?;
        if body.header != header {
            return Err(refused(
                "the backup's readable header does not match its sealed contents (altered)".into(),
            ));
        }
        // Check every record before writing anything.
        let mut restore = Vec::new();
        for &key_id in keys {
            let records = body
                .keys
                .iter()
                .find(|r| r.id == key_id)
                .ok_or_else(|| refused(format!("key {key_id} is not in this backup")))?;
            let info = self.open_info(key_id, &records.info)?;
            let (epoch, _) = seal::open(
                &self.key,
                self.node,
                RecordKind::Share,
                Subject::Key(key_id),
                &records.share,
            )?;
            if epoch != info.epoch {
                return Err(StoreError::Corrupt {
                    key_id,
                    reason: format!("share epoch {epoch} but metadata epoch {}", info.epoch),
                });
            }
            restore.push((info, records));
        }
        let mut w = self.begin()?;
        for (info, records) in &restore {
            let key_id = info.id;
            let current = match w.get(KEYS, &key_id.0)? {
                Some(record) => Some(self.open_info(key_id, &record)?),
                None => None,
            };
            if let Some(current) = current {
                // Metadata without a share record is a destroyed key's tombstone.
                if current.state != KeyState::Pending && w.get(SHARES, &key_id.0)?.is_none() {
                    return Err(refused(format!(
                        "key {key_id} was destroyed on this node: it does not come back from a backup"
                    )));
                }
                if current.epoch > info.epoch {
                    return Err(refused(format!(
                        "this node holds key {key_id} at epoch {}, newer than the backup's {}",
                        current.epoch, info.epoch
                    )));
                }
                // Same epoch, older metadata: restoring would undo a change of state (a deactivation, a
                // compromise) or of label since the backup.
                if current.epoch == info.epoch && current.revision > info.revision {
                    return Err(refused(format!(
                        "this node holds key {key_id} at revision {} ({}), newer than the backup's {} ({}): \
                         restoring it would undo what changed since",
                        current.revision, current.state, info.revision, info.state
                    )));
                }
            }
            w.put(KEYS, &key_id.0, &records.info)?;
            w.put(SHARES, &key_id.0, &records.share)?;
        }
        w.commit()?;
        if let Ok(mut cache) = self.cache.write() {
            for (info, _) in &restore {
                cache.remove(&info.id);
            }
        }
        for object in &body.objects {
            self.put_object(object)?;
        }
        if let Some(membership) = &body.membership {
            self.put_membership(membership)?;
        }
        Ok(restore.into_iter().map(|(info, _)| info).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use rand_core::OsRng;
    use vhsm_core::Algorithm;
    use vhsm_protocols::{
        frost::dkg::{DkgParams, FrostDkg},
        simulator::Simulation,
        SessionId,
    };

    fn shares() -> Vec<KeyShare> {
        let session = SessionId::random(&mut OsRng);
        let parties: Vec<FrostDkg> = (1..=3u16)
            .map(|me| {
                FrostDkg::new(DkgParams {
                    session,
                    me,
                    participants: vec![1, 2, 3],
                    threshold: 2,
                })
                .unwrap()
            })
            .collect();
        let outcome = Simulation::new(parties).run(&mut OsRng);
        outcome
            .outputs
            .into_values()
            .map(|s| KeyShare::Frost(Box::new(s)))
            .collect()
    }

    fn info(share: &KeyShare) -> KeyInfo {
        KeyInfo {
            id: KeyId([1; 16]),
            label: "test".into(),
            algorithm: Algorithm::Ed25519,
            public_key: share.public_key(),
            public_package: share.public_package(),
            threshold: 2,
            holders: vec![1, 2, 3],
            state: KeyState::Pending,
            created_unix: 0,
            epoch: 0,
            revision: 0,
            attributes: vec![(3, b"label".to_vec())],
        }
    }

    #[test]
    fn pending_then_active_survives_reopen_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.redb");
        let key_hex = StorageKey::generate().to_hex();
        let key_path = dir.path().join("k");
        std::fs::write(&key_path, key_hex.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let shares = shares();
        let share = shares.into_iter().find(|s| s.participant() == 1).unwrap();
        let info = info(&share);
        {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            store.insert_pending(&info, &share).unwrap();
            assert!(matches!(
                store.insert_pending(&info, &share),
                Err(StoreError::Exists(_))
            ));
            // A pending key loads (for its pairwise consistency test), but says it is pending.
            assert_eq!(
                store.active_key(info.id).unwrap().info.state,
                KeyState::Pending
            );
            assert_eq!(
                store.activate(info.id, KeyState::Active).unwrap().state,
                KeyState::Active
            );
            assert_eq!(
                store.active_key(info.id).unwrap().info.state,
                KeyState::Active,
                "the cache forgets the pending state"
            );
            assert!(
                !store.abort_pending(info.id).unwrap(),
                "active keys are not aborted"
            );
        }
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        let loaded = store.active_key(info.id).unwrap();
        assert_eq!(loaded.share.public_key(), share.public_key());
        assert_eq!(store.keys().unwrap().len(), 1);
        drop(store);

        let bytes = std::fs::read(&path).unwrap();
        let secret = share.secret_bytes_for_tests();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));

        // The same database under another node id does not open (its metadata row is bound to node 1).
        let other = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 2).unwrap_err();
        assert!(
            other.to_string().contains("StoreMeta record for node 2"),
            "{other}"
        );
    }

    #[test]
    fn a_staged_share_survives_a_crash_and_replaces_the_old_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let share = shares().into_iter().find(|s| s.participant() == 1).unwrap();
        let info = info(&share);
        let mut next = info.clone();
        next.epoch = 1;
        next.state = KeyState::Active;
        next.label = "next epoch".into();
        {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            store.insert_pending(&info, &share).unwrap();
            store.activate(info.id, KeyState::Active).unwrap();
            let mut same = next.clone();
            same.epoch = 0;
            assert!(
                store.stage(&same, &share).is_err(),
                "a share is replaced only by a later epoch's"
            );
            // A holder behind the key's epoch (rolled back to before a refresh) is repaired with a later one
            // (issue 15, item 2); a staged share of another attempt is replaced.
            let mut later = next.clone();
            later.epoch = 2;
            store.stage(&later, &share).unwrap();
            assert_eq!(store.staged().unwrap(), vec![later]);
            store.stage(&next, &share).unwrap();
            assert_eq!(store.active_key(info.id).unwrap().info.epoch, 0);
        }
        // A crash before the commit: the old share is in force, the staged one is still there.
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        assert_eq!(store.active_key(info.id).unwrap().info.epoch, 0);
        assert_eq!(store.staged().unwrap(), vec![next.clone()]);
        assert!(!store.abort_staged(info.id, 7).unwrap(), "another epoch");
        let committed = store.commit_staged(info.id, 1).unwrap();
        assert_eq!(committed, next);
        assert_eq!(store.active_key(info.id).unwrap().info.label, "next epoch");
        assert!(store.staged().unwrap().is_empty());
        assert_eq!(store.keys().unwrap(), vec![next.clone()]);
        // Committing again is a no-op; there is nothing left to abort.
        assert_eq!(store.commit_staged(info.id, 1).unwrap(), next);
        assert!(!store.abort_staged(info.id, 1).unwrap());
        // A staged share can be dropped, and destroy removes staged shares too.
        let mut after = next.clone();
        after.epoch = 2;
        store.stage(&after, &share).unwrap();
        assert!(store.abort_staged(info.id, 2).unwrap());
        assert!(matches!(
            store.commit_staged(info.id, 2),
            Err(StoreError::NotFound(_))
        ));
        store.stage(&after, &share).unwrap();
        assert!(store.destroy_key(info.id).unwrap());
        assert!(store.staged().unwrap().is_empty());
        assert!(
            store.stage(&after, &share).is_err(),
            "a destroyed key stays destroyed"
        );
        // A node without the key (new, or repaired) may stage any epoch and commit it.
        let mut other = after.clone();
        other.id = KeyId([2; 16]);
        store.stage(&other, &share).unwrap();
        assert_eq!(store.commit_staged(other.id, 2).unwrap().epoch, 2);
        assert_eq!(store.active_key(other.id).unwrap().info.epoch, 2);
    }

    #[test]
    fn bans_persist_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            store.ban(3, "OT consistency check failed").unwrap();
        }
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        assert_eq!(store.banned().unwrap(), vec![3]);
        assert!(store.unban(3).unwrap());
        assert!(store.banned().unwrap().is_empty());
        assert!(!store.unban(3).unwrap());
    }

    #[test]
    fn updates_change_only_label_and_attributes_and_destroy_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 1).unwrap();
        let share = shares().into_iter().find(|s| s.participant() == 1).unwrap();
        let mut info = info(&share);
        store.insert_pending(&info, &share).unwrap();
        store.activate(info.id, KeyState::Active).unwrap();
        info.state = KeyState::Active;
        let mut update = info.clone();
        update.label = "renamed".into();
        update.attributes = vec![(0x102, vec![1, 2, 3])];
        update.revision = 1;
        assert_eq!(store.update_key(&update).unwrap().label, "renamed");
        assert_eq!(
            store.active_key(info.id).unwrap().info.attributes,
            vec![(0x102, vec![1, 2, 3])]
        );
        // An older revision changes nothing; a change of anything else is refused.
        let mut stale = update.clone();
        stale.label = "stale".into();
        stale.revision = 0;
        assert_eq!(store.update_key(&stale).unwrap().label, "renamed");
        let mut forged = update.clone();
        forged.revision = 2;
        forged.holders = vec![1, 2];
        assert!(store.update_key(&forged).is_err());

        // Lifecycle: active → deactivated (no way back) → destroyed (share gone, tombstone kept).
        assert_eq!(
            store
                .set_state(info.id, KeyState::Deactivated)
                .unwrap()
                .state,
            KeyState::Deactivated
        );
        assert!(matches!(
            store.set_state(info.id, KeyState::Active),
            Err(StoreError::Transition { .. })
        ));
        assert_eq!(
            store.active_key(info.id).unwrap().info.state,
            KeyState::Deactivated
        );
        assert!(store.destroy_key(info.id).unwrap());
        assert!(matches!(
            store.active_key(info.id),
            Err(StoreError::NotFound(_))
        ));
        let keys = store.keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].state, KeyState::Destroyed, "a tombstone remains");
        assert!(
            !store.destroy_key(info.id).unwrap(),
            "nothing left to destroy"
        );
        assert_eq!(
            store.keys().unwrap()[0].state,
            KeyState::Destroyed,
            "a second destroy keeps the tombstone"
        );
        assert!(store.set_state(info.id, KeyState::Active).is_err());
        assert!(
            matches!(store.release_share(info.id, 5), Err(StoreError::Refused(_))),
            "a tombstone is not released"
        );
    }

    /// A store in a temporary directory holding one active key (node 1's share of a fresh DKG).
    fn active_key_store() -> (tempfile::TempDir, ShareStore, KeyInfo) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 1).unwrap();
        let share = shares().remove(0);
        let info = info(&share);
        store.insert_pending(&info, &share).unwrap();
        store.activate(info.id, KeyState::Active).unwrap();
        (dir, store, info)
    }

    /// Issue 14, item 3: a destroyed key does not come back, and a restore does not undo a change of state.
    #[test]
    fn backups_neither_revive_a_destroyed_key_nor_undo_a_deactivation() {
        let (_dir, store, info) = active_key_store();
        let active_backup = store.backup(1).unwrap();

        // Deactivated since the backup: restoring the backup's active record is refused, nothing written.
        store.set_state(info.id, KeyState::Deactivated).unwrap();
        let e = store.restore(&active_backup, &[info.id]).unwrap_err();
        assert!(
            e.to_string().contains("undo") && e.to_string().contains("deactivated"),
            "{e}"
        );
        assert_eq!(
            store.active_key(info.id).unwrap().info.state,
            KeyState::Deactivated
        );
        // The same revision restores (a node restoring its own latest backup).
        let latest = store.backup(2).unwrap();
        store.restore(&latest, &[info.id]).unwrap();

        // Destroyed, then destroyed again: the tombstone stays and the old backups are refused.
        store.destroy_key(info.id).unwrap();
        store.destroy_key(info.id).unwrap();
        for backup in [&active_backup, &latest] {
            let e = store.restore(backup, &[info.id]).unwrap_err();
            assert!(e.to_string().contains("destroyed"), "{e}");
        }
        assert_eq!(store.keys().unwrap()[0].state, KeyState::Destroyed);
    }

    /// Issue 14, item 2: a key whose generation was never committed is not made usable by a reshare.
    #[test]
    fn a_pending_key_cannot_be_staged_past_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 1).unwrap();
        let share = shares().remove(0);
        let info = info(&share);
        store.insert_pending(&info, &share).unwrap();
        let mut next = info.clone();
        next.state = KeyState::Active;
        next.epoch = 1;
        let e = store.stage(&next, &share).unwrap_err();
        assert!(e.to_string().contains("never committed"), "{e}");
    }

    #[test]
    fn a_share_is_released_only_for_a_later_epoch() {
        let (_dir, store, info) = active_key_store();
        // The epoch it holds (0) is not released: it is a holder of it.
        assert!(matches!(
            store.release_share(info.id, 0),
            Err(StoreError::Refused(_))
        ));
        assert!(store.active_key(info.id).is_ok());
        // The key moved on to epoch 1 without this node: share and metadata go, no tombstone.
        assert!(store.release_share(info.id, 1).unwrap());
        assert!(store.keys().unwrap().is_empty());
        assert!(!store.release_share(info.id, 1).unwrap());
    }

    #[test]
    fn objects_keep_the_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 1).unwrap();
        let mut object = StoredObject {
            id: ObjectId([9; 16]),
            version: 1,
            destroyed: false,
            attributes: vec![(0, vec![1])],
        };
        assert!(store.put_object(&object).unwrap());
        object.version = 3;
        object.attributes = vec![(0, vec![3])];
        assert!(store.put_object(&object).unwrap());
        let mut old = object.clone();
        old.version = 2;
        assert!(!store.put_object(&old).unwrap());
        assert_eq!(store.objects().unwrap(), vec![object]);
    }

    #[test]
    fn membership_keeps_the_newest_sealed_across_reopen() {
        use vhsm_core::MemberEntry;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let membership = |version: u64, n: u16| Membership {
            version,
            threshold: 2,
            nodes: (1..=n)
                .map(|id| MemberEntry {
                    id,
                    address: format!("127.0.0.1:{}", 7000 + id),
                })
                .collect(),
        };
        {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            assert_eq!(store.membership().unwrap(), None);
            assert!(store.put_membership(&membership(2, 4)).unwrap());
            assert!(
                !store.put_membership(&membership(2, 3)).unwrap(),
                "same version"
            );
            assert!(!store.put_membership(&membership(1, 3)).unwrap(), "older");
        }
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        assert_eq!(store.membership().unwrap(), Some(membership(2, 4)));
        assert!(store.put_membership(&membership(3, 5)).unwrap());
        assert_eq!(store.membership().unwrap(), Some(membership(3, 5)));
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(14).any(|w| w == b"127.0.0.1:7005"), "sealed");
        // Under another node id the store does not open (its metadata row is bound to node 1).
        assert!(ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 2).is_err());
    }

    /// Issue 14, item 8: every change advances the sealed generation; a single record put back from an older copy
    /// of the file (it opens on its own) makes the store refuse to open, and so does a removed record.
    #[test]
    fn a_record_put_back_from_an_older_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let share = shares().remove(0);
        let info = info(&share);
        let raw = |table: TableDefinition<&[u8], &[u8]>| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(table).unwrap();
            let value = t.get(&info.id.0[..]).unwrap().map(|v| v.value().to_vec());
            value
        };
        let active_record = {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            assert_eq!(
                store.meta().unwrap(),
                None,
                "no metadata row before a write"
            );
            store.insert_pending(&info, &share).unwrap();
            assert_eq!(store.meta().unwrap().unwrap().generation, 1);
            store.activate(info.id, KeyState::Active).unwrap();
            assert_eq!(store.meta().unwrap().unwrap().generation, 2);
            // A change that changes nothing commits nothing.
            store.activate(info.id, KeyState::Active).unwrap();
            store.set_state(info.id, KeyState::Active).unwrap();
            assert_eq!(store.meta().unwrap().unwrap().generation, 2);
            drop(store);
            let active = raw(KEYS).unwrap();
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            store.set_state(info.id, KeyState::Deactivated).unwrap();
            assert_eq!(store.meta().unwrap().unwrap().generation, 3);
            assert_eq!(store.view().unwrap().key_records, 1);
            active
        };
        // The active metadata (revision 0) put back over the deactivated one (revision 1): each opens alone.
        let put = |table: TableDefinition<&[u8], &[u8]>, value: Option<&[u8]>| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(table).unwrap();
                match value {
                    Some(v) => {
                        t.insert(&info.id.0[..], v).unwrap();
                    }
                    None => {
                        t.remove(&info.id.0[..]).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        };
        let deactivated_record = raw(KEYS).unwrap();
        put(KEYS, Some(&active_record));
        let err = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap_err();
        assert!(
            err.to_string().contains("do not match the digest sealed")
                && err.to_string().contains("generation 3"),
            "{err}"
        );
        // The current record back: it opens again. A removed share: refused.
        put(KEYS, Some(&deactivated_record));
        ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        put(SHARES, None);
        assert!(ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).is_err());
    }

    /// Issue 14, item 11: a PIN's failure counter is a sealed record like any other: kept across a reopen, each
    /// change a new generation, and an older counter put back (to undo failures) is refused at open; one PIN's
    /// record does not open as the other's.
    #[test]
    fn pin_counters_are_sealed_kept_and_covered_by_the_records_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let open = || ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        let raw = |user: PinUser| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(PIN_COUNTERS).unwrap();
            let value = t
                .get(pin_record_key(user))
                .unwrap()
                .map(|v| v.value().to_vec());
            value
        };
        let put = |user: PinUser, value: &[u8]| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(PIN_COUNTERS)
                .unwrap()
                .insert(pin_record_key(user), value)
                .unwrap();
            txn.commit().unwrap();
        };
        let one_more = |c: PinCounter| {
            Some(PinCounter {
                failures: c.failures + 1,
                locked: false,
            })
        };
        let after_one = {
            let store = open();
            assert_eq!(
                store.pin_counter(PinUser::User).unwrap(),
                PinCounter::default()
            );
            let (before, after) = store.update_pin_counter(PinUser::User, one_more).unwrap();
            assert_eq!((before.failures, after.failures), (0, 1));
            assert_eq!(store.meta().unwrap().unwrap().generation, 1);
            // No change, no write.
            store.update_pin_counter(PinUser::User, |_| None).unwrap();
            store.update_pin_counter(PinUser::User, Some).unwrap();
            assert_eq!(store.meta().unwrap().unwrap().generation, 1);
            drop(store);
            raw(PinUser::User).unwrap()
        };
        {
            let store = open();
            assert_eq!(store.pin_counter(PinUser::User).unwrap().failures, 1);
            store.update_pin_counter(PinUser::User, one_more).unwrap();
            store
                .update_pin_counter(PinUser::SecurityOfficer, one_more)
                .unwrap();
            assert_eq!(store.pin_counter(PinUser::User).unwrap().failures, 2);
            assert_eq!(
                store
                    .pin_counter(PinUser::SecurityOfficer)
                    .unwrap()
                    .failures,
                1
            );
            assert_eq!(store.meta().unwrap().unwrap().generation, 3);
        }
        let after_two = raw(PinUser::User).unwrap();
        // The counter of one failure put back over the one of two: refused.
        put(PinUser::User, &after_one);
        let err = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap_err();
        assert!(
            err.to_string().contains("do not match the digest sealed"),
            "{err}"
        );
        put(PinUser::User, &after_two);
        let store = open();
        // The user's record does not open as the security officer's.
        let err = store
            .open_pin_counter(PinUser::SecurityOfficer, &after_two)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Seal(SealError::Tampered { .. })),
            "{err}"
        );
        assert_eq!(store.pin_counter(PinUser::User).unwrap().failures, 2);
    }

    /// A store written before the metadata row existed opens as generation 0 and gets its row at its first write.
    #[test]
    fn a_store_without_a_metadata_row_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let share = shares().remove(0);
        let info = info(&share);
        {
            let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
            store.insert_pending(&info, &share).unwrap();
            store.ban(3, "test").unwrap();
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().remove(META_RECORD).unwrap();
            txn.commit().unwrap();
        }
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        assert_eq!(store.meta().unwrap(), None);
        let view = store.view().unwrap();
        assert_eq!(
            (view.generation, view.head, view.key_records),
            (0, Head::default(), 1)
        );
        assert!(store.unban(3).unwrap());
        assert_eq!(store.meta().unwrap().unwrap().generation, 1);
        drop(store);
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        assert_eq!(
            store.active_key(info.id).unwrap().info.state,
            KeyState::Pending
        );
    }

    #[test]
    fn abort_removes_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 2).unwrap();
        let share = shares().into_iter().find(|s| s.participant() == 2).unwrap();
        let info = info(&share);
        store.insert_pending(&info, &share).unwrap();
        assert!(store.abort_pending(info.id).unwrap());
        assert!(store.keys().unwrap().is_empty());
        assert!(!store.abort_pending(info.id).unwrap());
    }
}
