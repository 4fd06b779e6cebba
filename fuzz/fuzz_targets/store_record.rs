//! What a node keeps on disk, decoded from arbitrary bytes (the first byte selects the decoder):
//!
//! | selector % 15 | decoder (public API) | check |
//! |---|---|---|
//! | 0 | `vhsm_node::share::KeyShare::from_bytes` (a share record's plaintext) | `to_bytes` gives the input back |
//! | 1 | `FrostPublicKeys::from_bytes` (`KeyInfo::public_package`) | idem |
//! | 2 | `EcdsaPublicKeys::from_bytes` | idem |
//! | 3 | `SplitAesPublicKeys::from_bytes` | idem |
//! | 4 | `vhsm_node::backup::decode_body` (a backup's opened body) | postcard round trip, canonical |
//! | 5, 6 | `ReshareOutput::<EdwardsPoint / RistrettoPoint>::from_bytes` | `to_bytes` gives the input back |
//! | 7 | `EcdsaReshareOutput::from_bytes` | idem |
//! | 8–10 | `SharedKey::<EdwardsPoint / RistrettoPoint / k256 / p256>::from_bytes` | idem |
//! | 11 | a key's metadata record, through `ShareStore::restore`: the input sealed as the record of key `09…09` at epoch 3 in a backup of node 1 | restored exactly when it is the canonical encoding of that key's metadata |
//! | 12–14 | `vhsm_node::records::decode_key_info` / `decode_object` / `decode_membership` and `decode_pin_counter` (14 runs both) | canonical round trip |
//!
//! Fixed findings, kept as regression seeds: `backup-body-trailing` and `store-record-trailing` (both decoders
//! accepted bytes after the end; they now refuse them).
#![no_main]

use std::sync::OnceLock;

use curve25519_dalek::{EdwardsPoint, RistrettoPoint};
use libfuzzer_sys::fuzz_target;
use vhsm_core::{KeyId, KeyInfo, KeyState};
use vhsm_fuzz::check_exact;
use vhsm_node::{
    backup::{decode_body, encode_body, BackupBody, BackupHeader, BackupKey, KeyRecords, FORMAT_VERSION},
    seal::{seal, RecordKind, Subject},
    share::KeyShare,
    store::ShareStore,
};
use vhsm_protocols::{
    ecdsa::EcdsaPublicKeys,
    frost::FrostPublicKeys,
    reshare::{EcdsaReshareOutput, ReshareGroup, ReshareOutput, SharedKey},
    split_aes::SplitAesPublicKeys,
};

fn exact<T, E>(what: &str, data: &[u8], decode: impl Fn(&[u8]) -> Result<T, E>, encode: impl Fn(&T) -> Vec<u8>) {
    if let Ok(value) = decode(data) {
        let bytes = encode(&value);
        check_exact(what, data, &bytes);
        assert!(decode(&bytes).is_ok(), "{what}: the re-encoding does not decode");
    }
}

/// A record decoder of `vhsm_node::records`: what decodes re-encodes canonically and decodes again to the same.
fn record<T: PartialEq + std::fmt::Debug, E>(
    what: &str,
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Result<Vec<u8>, E>,
) {
    if let Ok(value) = decode(data) {
        let Ok(bytes) = encode(&value) else { panic!("{what}: a decoded record does not encode") };
        vhsm_fuzz::check_canonical(what, data, &bytes);
        assert!(decode(&bytes).ok().as_ref() == Some(&value), "{what}: the re-encoding decodes to something else");
    }
}

fn reshare_output<G: ReshareGroup>(data: &[u8]) {
    exact("ReshareOutput", data, ReshareOutput::<G>::from_bytes, |o| o.to_bytes().to_vec());
}

fn shared_key<G: ReshareGroup>(data: &[u8]) {
    exact("SharedKey", data, SharedKey::<G>::from_bytes, |k| k.to_bytes());
}

fn backup_body(data: &[u8]) {
    let Ok(body) = decode_body(data) else { return };
    if !vhsm_fuzz::tolerated("backup-body-trailing") {
        let (_, rest) = postcard::take_from_bytes::<BackupBody>(data).expect("the body decodes");
        assert!(rest.is_empty(), "decode_body accepted {} trailing bytes: {}", rest.len(), vhsm_fuzz::hex(data));
    }
    let first = encode_body(&body).expect("an opened body re-encodes");
    let again = decode_body(&first).expect("a re-encoded body decodes");
    assert_eq!(*encode_body(&again).expect("re-encodes"), *first, "backup body round trip not stable");
    vhsm_fuzz::check_canonical("backup body", data, &first);
}

const NODE: u16 = 1;
const KEY: KeyId = KeyId([9; 16]);
const EPOCH: u64 = 3;
const KEY_INFO_VERSION: u8 = 2;

fn store() -> &'static ShareStore {
    static STORE: OnceLock<ShareStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let path = vhsm_fuzz::storage::scratch_dir().join("shares.redb");
        let _ = std::fs::remove_file(&path);
        ShareStore::open(&path, vhsm_fuzz::storage::load_key(), NODE).expect("store")
    })
}

fn key_info_record(plain: &[u8]) {
    let key = vhsm_fuzz::storage::key();
    let info = seal(key, NODE, RecordKind::KeyInfo, Subject::Key(KEY), EPOCH, plain);
    let share = seal(key, NODE, RecordKind::Share, Subject::Key(KEY), EPOCH, b"share");
    let header = BackupHeader {
        format: FORMAT_VERSION,
        node: NODE,
        created_unix: 7,
        keys: vec![BackupKey { id: KEY, epoch: EPOCH, state: KeyState::Active }],
    };
    let body = BackupBody {
        header: header.clone(),
        keys: vec![KeyRecords { id: KEY, info, share }],
        objects: Vec::new(),
        membership: None,
    };
    let body = seal(key, NODE, RecordKind::Backup, Subject::Node(NODE), 7, &encode_body(&body).expect("body"));
    let file = vhsm_node::backup::write_file(&header, &body).expect("file");
    // What the store holds of the key from earlier inputs: a restore never takes an older revision over it
    // (issue 14, item 3), so such a refusal is right.
    let held = store().keys().expect("keys").into_iter().find(|k| k.id == KEY);
    let restored = store().restore(&file, &[KEY]);

    // What the record should give: the metadata of key 09…09 at epoch 3, canonically encoded.
    let expected = match plain {
        [KEY_INFO_VERSION, rest @ ..] => postcard::take_from_bytes::<KeyInfo>(rest)
            .ok()
            .filter(|(info, rest)| info.id == KEY && info.epoch == EPOCH && rest.is_empty()),
        _ => None,
    };
    match (restored, expected) {
        (Ok(infos), Some((info, rest))) => {
            assert_eq!(infos, vec![info.clone()], "restored metadata differs from the record");
            if !vhsm_fuzz::tolerated("store-record-trailing") {
                assert!(rest.is_empty(), "the store accepted a metadata record with {} trailing bytes", rest.len());
            }
            let mut canonical = vec![KEY_INFO_VERSION];
            canonical.extend(postcard::to_stdvec(&info).expect("encodes"));
            vhsm_fuzz::check_canonical("key metadata record", &plain[..plain.len() - rest.len()], &canonical);
        }
        (Ok(infos), None) => panic!("restored {infos:?} from a record that is not this key's metadata"),
        (Err(_), None) => {}
        (Err(e), Some((info, _))) => {
            let older = held.is_some_and(|h| h.epoch > info.epoch || (h.epoch == info.epoch && h.revision > info.revision));
            if !older {
                panic!("a valid metadata record was refused: {e} ({info:?})");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = data.split_first() else { return };
    match selector % 15 {
        0 => exact("KeyShare", data, KeyShare::from_bytes, |s| s.to_bytes().to_vec()),
        1 => exact("FrostPublicKeys", data, FrostPublicKeys::from_bytes, |k| k.to_bytes()),
        2 => exact("EcdsaPublicKeys", data, EcdsaPublicKeys::from_bytes, |k| k.to_bytes()),
        3 => exact("SplitAesPublicKeys", data, SplitAesPublicKeys::from_bytes, |k| k.to_bytes()),
        4 => backup_body(data),
        5 => reshare_output::<EdwardsPoint>(data),
        6 => reshare_output::<RistrettoPoint>(data),
        7 => exact("EcdsaReshareOutput", data, EcdsaReshareOutput::from_bytes, |o| o.to_bytes().to_vec()),
        8 => shared_key::<EdwardsPoint>(data),
        9 => shared_key::<RistrettoPoint>(data),
        10 => {
            shared_key::<k256::ProjectivePoint>(data);
            shared_key::<p256::ProjectivePoint>(data);
        }
        12 => record("key metadata record", data, vhsm_node::records::decode_key_info, vhsm_node::records::encode_key_info),
        13 => record("object record", data, vhsm_node::records::decode_object, vhsm_node::records::encode_object),
        14 => {
            record("membership record", data, vhsm_node::records::decode_membership, vhsm_node::records::encode_membership);
            record("PIN counter record", data, vhsm_node::records::decode_pin_counter, vhsm_node::records::encode_pin_counter);
        }
        _ => key_info_record(data),
    }
});
