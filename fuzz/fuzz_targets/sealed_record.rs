//! The node's sealed records, `vhsm_node::seal::open` and `open_bound` (AES-256-GCM under the storage key,
//! associated data binding node, record kind, subject and epoch, and in version 2 also the revision), with a fixed
//! storage key and a fixed binding (node 1, a share of key `07…07`):
//!
//! - any input: `open` (version 1 only) and `open_bound` (both versions) never panic, refuse by the right reason
//!   (empty/short: `Truncated`; another version byte: `Version`; otherwise `Tampered` unless it is a record really
//!   sealed under that key and binding, as some seeds are), and what opens has the documented layout;
//! - inputs `0xff ‖ kind selector (1) ‖ epoch (8, BE) ‖ flip (2, BE) ‖ plaintext` (a layout no record has, its
//!   version byte is 0xff): `seal` the plaintext with a binding chosen by the selector and check that `open` gives
//!   back epoch and plaintext, and that another node, kind or subject, a flipped bit (at `flip`) or a truncation is
//!   refused;
//! - inputs `0xfe ‖ kind selector (1) ‖ epoch (8) ‖ revision (8) ‖ flip (2) ‖ plaintext`: the same for
//!   `seal_bound`/`open_bound`, and also that another revision or epoch in the header is refused, that `open`
//!   refuses the version-2 record by its version, and that neither version can be passed off as the other (the
//!   version byte rewritten, the revision cut out or added: refused, so that no rollback drops the revision's
//!   binding);
//! - inputs starting with the sealed key file's magic: `SealedKeyFile::unwrap` refuses, without deriving a key,
//!   every file whose length, version or Argon2id parameters are wrong (files with valid parameters are skipped: each
//!   would cost an Argon2id derivation of 19 MiB to 1 GiB).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_core::{KeyId, ObjectId, PinUser};
use vhsm_node::seal::{
    open, open_bound, seal, seal_bound, Binding, KdfParams, RecordKind, SealError, SealedKeyFile, StorageKey, Subject,
};

const NODE: u16 = 1;
const SUBJECT: Subject = Subject::Key(KeyId([7; 16]));
const KINDS: [RecordKind; 7] = [
    RecordKind::Share,
    RecordKind::KeyInfo,
    RecordKind::Ban,
    RecordKind::Object,
    RecordKind::Membership,
    RecordKind::Backup,
    RecordKind::PinCounter,
];
const SEALED_KEY_MAGIC: &[u8; 16] = b"vHSM-sealed-key\n";
const SEALED_KEY_LEN: usize = 16 + 1 + 12 + 16 + 12 + 32 + 16;

fn key() -> &'static StorageKey {
    vhsm_fuzz::storage::key()
}

fn subject_of(selector: u8) -> Subject {
    match (selector >> 3) % 4 {
        0 => Subject::Key(KeyId([selector; 16])),
        1 => Subject::Node(u16::from(selector)),
        2 => Subject::Object(ObjectId([selector; 16])),
        _ if selector & 1 == 0 => Subject::Pin(PinUser::User),
        _ => Subject::Pin(PinUser::SecurityOfficer),
    }
}

fn other_subject(subject: Subject) -> Subject {
    match subject {
        Subject::Key(KeyId(mut id)) => {
            id[0] ^= 1;
            Subject::Key(KeyId(id))
        }
        Subject::Node(n) => Subject::Node(n ^ 1),
        // Not `Subject::Key(KeyId(id))`: the associated data binds the subject's bytes, not its type (a key and an
        // object with the same 16 bytes are one subject). That is sound because every record kind is used with one
        // type of subject only (shares and metadata: keys; objects: objects; bans, membership, backup: nodes; PIN
        // counters: PINs).
        Subject::Object(ObjectId(mut id)) => {
            id[15] ^= 0x80;
            Subject::Object(ObjectId(id))
        }
        Subject::Pin(PinUser::User) => Subject::Pin(PinUser::SecurityOfficer),
        Subject::Pin(PinUser::SecurityOfficer) => Subject::Pin(PinUser::User),
    }
}

/// Bytes before the ciphertext (version, header, nonce) plus the GCM tag, per version.
const V1_OVERHEAD: usize = 1 + 8 + 12 + 16;
const V2_OVERHEAD: usize = 1 + 16 + 12 + 16;

fn arbitrary_record(data: &[u8]) {
    let v1 = open(key(), NODE, RecordKind::Share, SUBJECT, data);
    match &v1 {
        Err(SealError::Truncated) => assert!(data.is_empty() || (data[0] == 1 && data.len() < V1_OVERHEAD)),
        Err(SealError::Version(v)) => assert!(data.first() == Some(v) && *v != 1),
        Err(SealError::Tampered { .. }) => assert!(data[0] == 1 && data.len() >= V1_OVERHEAD),
        Err(e) => panic!("unexpected refusal: {e}"),
        Ok((epoch, plain)) => {
            assert_eq!(data[0], 1);
            assert_eq!(epoch.to_be_bytes(), data[1..9]);
            assert_eq!(plain.len(), data.len() - V1_OVERHEAD);
        }
    }
    let either = open_bound(key(), NODE, RecordKind::Share, SUBJECT, data);
    match either {
        Err(SealError::Truncated) => assert!(
            data.is_empty()
                || (data[0] == 1 && data.len() < V1_OVERHEAD)
                || (data[0] == 2 && data.len() < V2_OVERHEAD)
        ),
        Err(SealError::Version(v)) => assert!(data.first() == Some(&v) && v != 1 && v != 2),
        Err(SealError::Tampered { .. }) => {
            assert!((data[0] == 1 && data.len() >= V1_OVERHEAD) || (data[0] == 2 && data.len() >= V2_OVERHEAD))
        }
        Err(e) => panic!("unexpected refusal: {e}"),
        Ok((binding, plain)) if data[0] == 1 => {
            // A version-1 record opens through either function alike, and binds no revision.
            let (epoch, v1_plain) = v1.expect("open_bound opened a version-1 record that open refuses");
            assert_eq!(binding, Binding { epoch, revision: None });
            assert_eq!(plain.as_slice(), v1_plain.as_slice());
        }
        Ok((binding, plain)) => {
            assert_eq!(data[0], 2);
            assert_eq!(binding.epoch.to_be_bytes(), data[1..9]);
            assert_eq!(binding.revision.map(u64::to_be_bytes), Some(data[9..17].try_into().unwrap()));
            assert_eq!(plain.len(), data.len() - V2_OVERHEAD);
        }
    }
}

fn sealed_round_trip(rest: &[u8]) {
    let [selector, e0, e1, e2, e3, e4, e5, e6, e7, f0, f1, plaintext @ ..] = rest else { return };
    let kind = KINDS[usize::from(*selector) % KINDS.len()];
    let subject = subject_of(*selector);
    let node = u16::from(*selector) << 4;
    let epoch = u64::from_be_bytes([*e0, *e1, *e2, *e3, *e4, *e5, *e6, *e7]);
    let record = seal(key(), node, kind, subject, epoch, plaintext);
    assert_eq!(record.len(), 1 + 8 + 12 + plaintext.len() + 16);
    let (opened_epoch, opened) = open(key(), node, kind, subject, &record).expect("a sealed record opens");
    assert_eq!(opened_epoch, epoch);
    assert_eq!(opened.as_slice(), plaintext);
    // Bound to node, kind and subject.
    assert!(open(key(), node ^ 1, kind, subject, &record).is_err());
    let other_kind = KINDS[(usize::from(*selector) + 1) % KINDS.len()];
    assert!(open(key(), node, other_kind, subject, &record).is_err());
    assert!(open(key(), node, kind, other_subject(subject), &record).is_err());
    // Any flipped bit, and any truncation.
    let flip = usize::from(u16::from_be_bytes([*f0, *f1]));
    let mut bad = record.clone();
    bad[flip % record.len()] ^= 1 << (flip % 8);
    assert!(open(key(), node, kind, subject, &bad).is_err(), "bit {flip} flipped and the record still opens");
    assert!(open(key(), node, kind, subject, &record[..record.len() - 1 - flip % 17]).is_err());
}

fn bound_round_trip(rest: &[u8]) {
    if rest.len() < 19 {
        return;
    }
    let (header, plaintext) = rest.split_at(19);
    let [selector, e @ .., f0, f1] = header else { return };
    let kind = KINDS[usize::from(*selector) % KINDS.len()];
    let subject = subject_of(*selector);
    let node = u16::from(*selector) << 4;
    let epoch = u64::from_be_bytes(e[..8].try_into().unwrap());
    let revision = u64::from_be_bytes(e[8..16].try_into().unwrap());
    let record = seal_bound(key(), node, kind, subject, epoch, revision, plaintext);
    assert_eq!(record.len(), V2_OVERHEAD + plaintext.len());
    assert_eq!(record[0], 2);
    let (binding, opened) = open_bound(key(), node, kind, subject, &record).expect("a sealed record opens");
    assert_eq!(binding, Binding { epoch, revision: Some(revision) });
    assert_eq!(opened.as_slice(), plaintext);
    // `open` reads version 1 only.
    assert!(matches!(open(key(), node, kind, subject, &record), Err(SealError::Version(2))));
    // Bound to node, kind and subject.
    assert!(open_bound(key(), node ^ 1, kind, subject, &record).is_err());
    let other_kind = KINDS[(usize::from(*selector) + 1) % KINDS.len()];
    assert!(open_bound(key(), node, other_kind, subject, &record).is_err());
    assert!(open_bound(key(), node, kind, other_subject(subject), &record).is_err());
    // Bound to the epoch and revision written in its header: another one (an older revision put back in the
    // header of a newer record, or the reverse) is refused.
    let flip = usize::from(u16::from_be_bytes([*f0, *f1]));
    for at in [1 + flip % 8, 9 + flip % 8] {
        let mut moved = record.clone();
        moved[at] ^= 1 << (flip % 8);
        assert!(open_bound(key(), node, kind, subject, &moved).is_err(), "header byte {at} changed, still opens");
    }
    // Passed off as version 1: the version byte rewritten, or the revision cut out.
    let mut relabelled = record.clone();
    relabelled[0] = 1;
    assert!(open_bound(key(), node, kind, subject, &relabelled).is_err());
    let mut cut = vec![1];
    cut.extend_from_slice(&record[1..9]);
    cut.extend_from_slice(&record[17..]);
    assert!(open_bound(key(), node, kind, subject, &cut).is_err(), "revision cut out and the record opens");
    // And a version-1 record passed off as version 2 (a revision added to its header).
    let old = seal(key(), node, kind, subject, epoch, plaintext);
    let mut grown = vec![2];
    grown.extend_from_slice(&old[1..9]);
    grown.extend_from_slice(&revision.to_be_bytes());
    grown.extend_from_slice(&old[9..]);
    assert!(open_bound(key(), node, kind, subject, &grown).is_err(), "revision added and the record opens");
    // Any flipped bit, and any truncation.
    let mut bad = record.clone();
    bad[flip % record.len()] ^= 1 << (flip % 8);
    assert!(open_bound(key(), node, kind, subject, &bad).is_err(), "bit {flip} flipped and the record still opens");
    assert!(open_bound(key(), node, kind, subject, &record[..record.len() - 1 - flip % 17]).is_err());
}

fn word(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn sealed_key_file(data: &[u8]) {
    let (min, max) = (KdfParams::MINIMUM, KdfParams::MAXIMUM);
    let refused_before_kdf = data.len() != SEALED_KEY_LEN || data[16] != 1 || {
        let (m, t, p) = (word(data, 17), word(data, 21), word(data, 25));
        m < min.m_cost || t < min.t_cost || p < min.p_cost || m > max.m_cost || t > max.t_cost || p > max.p_cost
    };
    if refused_before_kdf {
        match SealedKeyFile::unwrap(data, b"passphrase") {
            Err(SealError::KeyFile(_)) => {}
            Err(e) => panic!("sealed key file refused for the wrong reason: {e}"),
            Ok(_) => panic!("a malformed sealed key file unwrapped"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    arbitrary_record(data);
    match data {
        [0xff, rest @ ..] => sealed_round_trip(rest),
        [0xfe, rest @ ..] => bound_round_trip(rest),
        _ => {}
    }
    if data.starts_with(SEALED_KEY_MAGIC) {
        sealed_key_file(data);
    }
});
