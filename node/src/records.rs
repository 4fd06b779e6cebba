//! The store's record formats, versioned on their own. What a node writes to disk is defined here, once, and not
//! by the domain or wire types: a change to `vhsm_core::KeyInfo` (or to a message) is not a change of the disk
//! format, and every format version this build ever wrote stays readable. Each record's plaintext is a version
//! byte followed by the postcard encoding of that version's record type; it is then sealed (`crate::seal`).
//!
//! | record | versions read | written |
//! |---|---|---|
//! | key metadata | 2 ([`KeyRecordV2`]) | 2 |
//! | stored object | 1 ([`ObjectRecordV1`]) | 1 |
//! | membership | 1 ([`MembershipRecordV1`]) | 1 |
//! | the store's metadata row | 1 ([`StoreMetaRecordV1`]) | 1 |
//! | a PIN's failure counter | 1 ([`PinCounterRecordV1`]) | 1 |
//!
//! Version 1 of the key metadata (before attributes and revisions) was never released; a record of it is refused.
//! `node/tests/data/records/` holds records as the first release of the store wrote them; the tests read them.

use serde::{Deserialize, Serialize};
use vhsm_core::{
    Algorithm, KeyId, KeyInfo, KeyState, MemberEntry, Membership, NodeId, ObjectId, StoredObject,
};

/// Key metadata version 2 (the format the store wrote as `postcard(KeyInfo)` before it had record types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecordV2 {
    id: [u8; 16],
    label: String,
    algorithm: AlgorithmV1,
    public_key: Vec<u8>,
    public_package: Vec<u8>,
    threshold: u16,
    holders: Vec<NodeId>,
    state: KeyStateV1,
    created_unix: u64,
    epoch: u64,
    revision: u64,
    attributes: Vec<(u64, Vec<u8>)>,
}

/// A key's algorithm on disk (variant order is the encoding: append only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum AlgorithmV1 {
    Ed25519,
    EcdsaP256,
    EcdsaSecp256k1,
    SplitAes256,
}

/// A key's lifecycle state on disk (variant order is the encoding: append only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum KeyStateV1 {
    Pending,
    PreActive,
    Active,
    Deactivated,
    Compromised,
    Destroyed,
}

impl From<Algorithm> for AlgorithmV1 {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::Ed25519 => AlgorithmV1::Ed25519,
            Algorithm::EcdsaP256 => AlgorithmV1::EcdsaP256,
            Algorithm::EcdsaSecp256k1 => AlgorithmV1::EcdsaSecp256k1,
            Algorithm::SplitAes256 => AlgorithmV1::SplitAes256,
        }
    }
}

impl From<AlgorithmV1> for Algorithm {
    fn from(a: AlgorithmV1) -> Self {
        match a {
            AlgorithmV1::Ed25519 => Algorithm::Ed25519,
            AlgorithmV1::EcdsaP256 => Algorithm::EcdsaP256,
            AlgorithmV1::EcdsaSecp256k1 => Algorithm::EcdsaSecp256k1,
            AlgorithmV1::SplitAes256 => Algorithm::SplitAes256,
        }
    }
}

impl From<KeyState> for KeyStateV1 {
    fn from(s: KeyState) -> Self {
        match s {
            KeyState::Pending => KeyStateV1::Pending,
            KeyState::PreActive => KeyStateV1::PreActive,
            KeyState::Active => KeyStateV1::Active,
            KeyState::Deactivated => KeyStateV1::Deactivated,
            KeyState::Compromised => KeyStateV1::Compromised,
            KeyState::Destroyed => KeyStateV1::Destroyed,
        }
    }
}

impl From<KeyStateV1> for KeyState {
    fn from(s: KeyStateV1) -> Self {
        match s {
            KeyStateV1::Pending => KeyState::Pending,
            KeyStateV1::PreActive => KeyState::PreActive,
            KeyStateV1::Active => KeyState::Active,
            KeyStateV1::Deactivated => KeyState::Deactivated,
            KeyStateV1::Compromised => KeyState::Compromised,
            KeyStateV1::Destroyed => KeyState::Destroyed,
        }
    }
}

impl From<&KeyInfo> for KeyRecordV2 {
    fn from(k: &KeyInfo) -> Self {
        KeyRecordV2 {
            id: k.id.0,
            label: k.label.clone(),
            algorithm: k.algorithm.into(),
            public_key: k.public_key.clone(),
            public_package: k.public_package.clone(),
            threshold: k.threshold,
            holders: k.holders.clone(),
            state: k.state.into(),
            created_unix: k.created_unix,
            epoch: k.epoch,
            revision: k.revision,
            attributes: k.attributes.clone(),
        }
    }
}

impl From<KeyRecordV2> for KeyInfo {
    fn from(r: KeyRecordV2) -> Self {
        KeyInfo {
            id: KeyId(r.id),
            label: r.label,
            algorithm: r.algorithm.into(),
            public_key: r.public_key,
            public_package: r.public_package,
            threshold: r.threshold,
            holders: r.holders,
            state: r.state.into(),
            created_unix: r.created_unix,
            epoch: r.epoch,
            revision: r.revision,
            attributes: r.attributes,
        }
    }
}

/// A stored object, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecordV1 {
    id: [u8; 16],
    version: u64,
    destroyed: bool,
    attributes: Vec<(u64, Vec<u8>)>,
}

impl From<&StoredObject> for ObjectRecordV1 {
    fn from(o: &StoredObject) -> Self {
        ObjectRecordV1 {
            id: o.id.0,
            version: o.version,
            destroyed: o.destroyed,
            attributes: o.attributes.clone(),
        }
    }
}

impl From<ObjectRecordV1> for StoredObject {
    fn from(r: ObjectRecordV1) -> Self {
        StoredObject {
            id: ObjectId(r.id),
            version: r.version,
            destroyed: r.destroyed,
            attributes: r.attributes,
        }
    }
}

/// The cluster membership, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecordV1 {
    version: u64,
    threshold: u16,
    nodes: Vec<(NodeId, String)>,
}

impl From<&Membership> for MembershipRecordV1 {
    fn from(m: &Membership) -> Self {
        MembershipRecordV1 {
            version: m.version,
            threshold: m.threshold,
            nodes: m.nodes.iter().map(|n| (n.id, n.address.clone())).collect(),
        }
    }
}

impl From<MembershipRecordV1> for Membership {
    fn from(r: MembershipRecordV1) -> Self {
        Membership {
            version: r.version,
            threshold: r.threshold,
            nodes: r
                .nodes
                .into_iter()
                .map(|(id, address)| MemberEntry { id, address })
                .collect(),
        }
    }
}

/// The store's metadata row, version 1 (see `crate::store`): the generation, the audit head the store last
/// recorded, and the keyed digest of every record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMetaRecordV1 {
    generation: u64,
    audit_entries: u64,
    audit_hash: [u8; 32],
    records_digest: [u8; 32],
}

impl From<&crate::store::StoreMeta> for StoreMetaRecordV1 {
    fn from(m: &crate::store::StoreMeta) -> Self {
        StoreMetaRecordV1 {
            generation: m.generation,
            audit_entries: m.audit.entries,
            audit_hash: m.audit.hash,
            records_digest: m.records_digest,
        }
    }
}

impl From<StoreMetaRecordV1> for crate::store::StoreMeta {
    fn from(r: StoreMetaRecordV1) -> Self {
        crate::store::StoreMeta {
            generation: r.generation,
            audit: crate::audit::Head {
                entries: r.audit_entries,
                hash: r.audit_hash,
            },
            records_digest: r.records_digest,
        }
    }
}

/// A PIN's failure counter, version 1 (see `crate::pins`): wrong PINs in a row, and whether the PIN is locked on
/// this node (kept apart from the count, so that a lock outlives a later change of the configured limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCounterRecordV1 {
    failures: u32,
    locked: bool,
}

impl From<&vhsm_wire::node_api::PinCounter> for PinCounterRecordV1 {
    fn from(c: &vhsm_wire::node_api::PinCounter) -> Self {
        PinCounterRecordV1 {
            failures: c.failures,
            locked: c.locked,
        }
    }
}

impl From<PinCounterRecordV1> for vhsm_wire::node_api::PinCounter {
    fn from(r: PinCounterRecordV1) -> Self {
        vhsm_wire::node_api::PinCounter {
            failures: r.failures,
            locked: r.locked,
        }
    }
}

/// Why a record's plaintext does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No version byte.
    #[error("empty record")]
    Empty,
    /// A version this build does not read.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The body does not decode as its version says.
    #[error("does not decode: {0}")]
    Malformed(String),
}

fn encode<T: Serialize>(version: u8, record: &T) -> Result<Vec<u8>, RecordError> {
    let mut out = vec![version];
    out.extend_from_slice(
        &postcard::to_stdvec(record).map_err(|e| RecordError::Malformed(e.to_string()))?,
    );
    Ok(out)
}

fn split(plain: &[u8]) -> Result<(u8, &[u8]), RecordError> {
    plain
        .split_first()
        .map(|(v, body)| (*v, body))
        .ok_or(RecordError::Empty)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, RecordError> {
    match postcard::take_from_bytes(body) {
        Ok((record, [])) => Ok(record),
        Ok(_) => Err(RecordError::Malformed("bytes after its end".into())),
        Err(e) => Err(RecordError::Malformed(e.to_string())),
    }
}

/// The plaintext of a key's metadata record (the newest version). Holds no secret: the share is a record of its own.
pub fn encode_key_info(info: &KeyInfo) -> Result<Vec<u8>, RecordError> {
    encode(2, &KeyRecordV2::from(info))
}

/// Reads a key's metadata record of any version this build reads.
pub fn decode_key_info(plain: &[u8]) -> Result<KeyInfo, RecordError> {
    match split(plain)? {
        (2, body) => decode::<KeyRecordV2>(body).map(KeyInfo::from),
        (other, _) => Err(RecordError::UnknownVersion(other)),
    }
}

/// The plaintext of a stored object's record.
pub fn encode_object(object: &StoredObject) -> Result<Vec<u8>, RecordError> {
    encode(1, &ObjectRecordV1::from(object))
}

/// Reads a stored object's record.
pub fn decode_object(plain: &[u8]) -> Result<StoredObject, RecordError> {
    match split(plain)? {
        (1, body) => decode::<ObjectRecordV1>(body).map(StoredObject::from),
        (other, _) => Err(RecordError::UnknownVersion(other)),
    }
}

/// The plaintext of the membership record.
pub fn encode_membership(membership: &Membership) -> Result<Vec<u8>, RecordError> {
    encode(1, &MembershipRecordV1::from(membership))
}

/// Reads the membership record.
pub fn decode_membership(plain: &[u8]) -> Result<Membership, RecordError> {
    match split(plain)? {
        (1, body) => decode::<MembershipRecordV1>(body).map(Membership::from),
        (other, _) => Err(RecordError::UnknownVersion(other)),
    }
}

/// The plaintext of the store's metadata row.
pub fn encode_store_meta(meta: &crate::store::StoreMeta) -> Result<Vec<u8>, RecordError> {
    encode(1, &StoreMetaRecordV1::from(meta))
}

/// Reads the store's metadata row.
pub fn decode_store_meta(plain: &[u8]) -> Result<crate::store::StoreMeta, RecordError> {
    match split(plain)? {
        (1, body) => decode::<StoreMetaRecordV1>(body).map(crate::store::StoreMeta::from),
        (other, _) => Err(RecordError::UnknownVersion(other)),
    }
}

/// The plaintext of a PIN's failure counter record.
pub fn encode_pin_counter(
    counter: &vhsm_wire::node_api::PinCounter,
) -> Result<Vec<u8>, RecordError> {
    encode(1, &PinCounterRecordV1::from(counter))
}

/// Reads a PIN's failure counter record.
pub fn decode_pin_counter(plain: &[u8]) -> Result<vhsm_wire::node_api::PinCounter, RecordError> {
    match split(plain)? {
        (1, body) => decode::<PinCounterRecordV1>(body).map(Into::into),
        (other, _) => Err(RecordError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample_key() -> KeyInfo {
        KeyInfo {
            id: KeyId([0x11; 16]),
            label: "payments".into(),
            algorithm: Algorithm::EcdsaP256,
            public_key: vec![4; 65],
            public_package: vec![7; 40],
            threshold: 2,
            holders: vec![1, 2, 3],
            state: KeyState::Deactivated,
            created_unix: 1_764_000_000,
            epoch: 3,
            revision: 5,
            attributes: vec![(0x102, b"id-01".to_vec()), (0x3, b"tls".to_vec())],
        }
    }

    #[test]
    fn reads_the_records_the_first_release_wrote() {
        let key = decode_key_info(include_bytes!("../tests/data/records/key_info_v2.bin")).unwrap();
        assert_eq!(key, sample_key());
        let object = decode_object(include_bytes!("../tests/data/records/object_v1.bin")).unwrap();
        assert_eq!(object.id, ObjectId([0x22; 16]));
        assert_eq!(object.version, 4);
        assert_eq!(object.attributes.len(), 2);
        let membership =
            decode_membership(include_bytes!("../tests/data/records/membership_v1.bin")).unwrap();
        assert_eq!(membership.version, 6);
        assert_eq!(membership.ids(), vec![1, 2, 4]);
        assert_eq!(membership.nodes[2].address, "node-4.example:7104");
    }

    #[test]
    fn writes_what_it_reads_and_the_same_bytes_as_before() {
        let old = include_bytes!("../tests/data/records/key_info_v2.bin");
        assert_eq!(encode_key_info(&sample_key()).unwrap(), old.to_vec());
        for state in KeyState::ALL {
            for algorithm in Algorithm::ALL {
                let mut key = sample_key();
                key.state = state;
                key.algorithm = *algorithm;
                assert_eq!(
                    decode_key_info(&encode_key_info(&key).unwrap()).unwrap(),
                    key
                );
            }
        }
    }

    #[test]
    fn the_store_metadata_row_round_trips_and_refuses_garbage() {
        let meta = crate::store::StoreMeta {
            generation: 41,
            audit: crate::audit::Head {
                entries: 1234,
                hash: [0xab; 32],
            },
            records_digest: [0x5c; 32],
        };
        let plain = encode_store_meta(&meta).unwrap();
        assert_eq!(plain[0], 1);
        assert_eq!(decode_store_meta(&plain).unwrap(), meta);
        let mut longer = plain.clone();
        longer.push(0);
        assert!(matches!(
            decode_store_meta(&longer),
            Err(RecordError::Malformed(_))
        ));
        assert_eq!(
            decode_store_meta(&[2, 0]),
            Err(RecordError::UnknownVersion(2))
        );
    }

    #[test]
    fn the_pin_counter_record_keeps_its_first_encoding() {
        use vhsm_wire::node_api::PinCounter;
        let counter = PinCounter {
            failures: 3,
            locked: true,
        };
        let first = include_bytes!("../tests/data/records/pin_counter_v1.bin");
        assert_eq!(decode_pin_counter(first).unwrap(), counter);
        assert_eq!(encode_pin_counter(&counter).unwrap(), first.to_vec());
        for failures in [0, 1, 5, u32::MAX] {
            for locked in [false, true] {
                let c = PinCounter { failures, locked };
                assert_eq!(
                    decode_pin_counter(&encode_pin_counter(&c).unwrap()).unwrap(),
                    c
                );
            }
        }
        assert_eq!(
            decode_pin_counter(&[2, 0, 0]),
            Err(RecordError::UnknownVersion(2))
        );
        assert!(matches!(
            decode_pin_counter(&[1, 3, 1, 0]),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let mut record = encode_key_info(&sample_key()).unwrap();
        record[0] = 1;
        assert_eq!(
            decode_key_info(&record),
            Err(RecordError::UnknownVersion(1))
        );
        assert_eq!(decode_object(&[]), Err(RecordError::Empty));
        // Found by fuzzing: a record with bytes after its end is refused.
        let mut longer = encode_key_info(&sample_key()).unwrap();
        longer.push(0xaa);
        assert!(matches!(
            decode_key_info(&longer),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            decode_membership(&[1, 0xff]),
            Err(RecordError::Malformed(_))
        ));
    }
}
