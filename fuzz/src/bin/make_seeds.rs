//! Writes the seed corpora of the fuzz targets: real encodings of representative values (every variant of the
//! request and response enums, real protocol messages captured from simulated runs, a real blob, backup, sealed
//! records and shares). Run from `fuzz/`:
//!
//! ```text
//! cargo +nightly fuzz build --features seeds make_seeds
//! target/x86_64-unknown-linux-gnu/release/make_seeds seeds
//! ```
//!
//! The output differs from run to run (keys, nonces and sessions are random); the seeds are committed once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use rand_core::OsRng;
use serde::Serialize;
use vhsm_core::{
    backup::{write_file, BackupHeader, BackupKey, FORMAT_VERSION},
    Algorithm, HashAlg, KeyId, KeyInfo, KeyState, KeyUse, MemberEntry, Membership, ObjectId, PinUser,
    SecretBytes, StoredObject, TokenInfo,
};
use vhsm_node::{
    backup::{encode_body, BackupBody, KeyRecords},
    seal::{seal, seal_bound, KdfParams, RecordKind, SealedKeyFile, Subject},
    share::KeyShare,
    store::ShareStore,
    unseal::generate_key_pair,
};
use vhsm_protocols::{
    ecdsa::{EcdsaCurve, EcdsaDkg, EcdsaKeyShare, EcdsaMessage, EcdsaSignature},
    frost::{
        commit, dkg::DkgMessage, sign, signing_package, DkgParams, FrostDkg, FrostKeyShare,
    },
    reshare::{
        DealPayload, EcdsaReshare, Reshare, ReshareBody, ReshareMessage, ReshareParams,
    },
    simulator::{Delivery, Simulation},
    split_aes::{
        dkg::SplitAesDkgMessage, encrypt_in_process, evaluate, evaluate_receipt, CiphertextBlob, DkgRound1Payload, SplitAesDkg,
        SplitAesKeyShare,
    },
    ParticipantId, Protocol, SessionId,
};
use vhsm_wire::{
    client_api::{AuditPage, ClientRequest, ClientResponse, ClusterStatus, NodeHealth, NodeStatus, ShareBehind},
    frame,
    mesh::{MeshMessage, MeshPayload},
    node_api::{NodeRequest, NodeResponse, PinCounter, PinState, Precommitment},
    ErrorKind, WireError,
};

/// Largest seed written; bigger encodings are reported and left out.
const MAX_SEED: usize = 8 * 1024;

struct Seeds {
    root: PathBuf,
    written: usize,
    bytes: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        if bytes.len() > MAX_SEED {
            eprintln!("skipped {target}/{name}: {} bytes", bytes.len());
            return;
        }
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        self.written += 1;
        self.bytes += bytes.len();
    }

    fn frame<T: Serialize>(&mut self, target: &str, name: &str, value: &T) {
        let bytes = frame::encode(value).unwrap();
        self.put(target, name, &bytes);
    }

    /// A seed of a target whose first byte selects the decoder.
    fn selected(&mut self, target: &str, name: &str, selector: u8, bytes: &[u8]) {
        let mut out = vec![selector];
        out.extend_from_slice(bytes);
        self.put(target, name, &out);
    }
}

/// A security officer's approval with a made-up signature (the decoders do not check signatures).
fn approval(committee: &[u16], threshold: u16) -> vhsm_core::ChangeApproval {
    vhsm_core::ChangeApproval {
        committee: committee.to_vec(),
        threshold,
        not_after: 1_900_000_000,
        signature: vec![0x5a; 64],
    }
}

fn params(session: SessionId, me: ParticipantId) -> DkgParams {
    DkgParams { session, me, participants: vec![1, 2, 3], threshold: 2 }
}

/// Runs a protocol to the end, keeping the first `keep` message copies of every kind `kind(message)` names.
fn run<P: Protocol>(
    parties: Vec<P>,
    kind: impl Fn(&P::Message) -> String,
) -> (BTreeMap<ParticipantId, P::Output>, BTreeMap<String, P::Message>)
where
    P::Message: Clone,
{
    let mut messages = BTreeMap::new();
    let outcome = Simulation::new(parties).run_with_hook(&mut OsRng, |_, _, m: &mut P::Message| {
        messages.entry(kind(m)).or_insert_with(|| m.clone());
        Delivery::Deliver
    });
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    (outcome.outputs, messages)
}

fn key_info(id: KeyId, algorithm: Algorithm, public_key: Vec<u8>, public_package: Vec<u8>) -> KeyInfo {
    KeyInfo {
        id,
        label: "seed key".into(),
        algorithm,
        public_key,
        public_package,
        threshold: 2,
        holders: vec![1, 2, 3],
        state: KeyState::Active,
        created_unix: 1_780_000_000,
        epoch: 3,
        revision: 1,
        attributes: vec![(0x102, b"id-1".to_vec()), (0x3, b"seed key".to_vec())],
    }
}

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let mut s = Seeds { root: PathBuf::from(&root), written: 0, bytes: 0 };
    let session = SessionId::random(&mut OsRng);

    // --- Real key material and protocol messages, from simulated runs of 3 parties (threshold 2).
    let (frost, frost_messages) = run(
        (1..=3).map(|me| FrostDkg::new(params(session, me)).unwrap()).collect(),
        |m: &DkgMessage| format!("{:?}", std::mem::discriminant(&m.body)),
    );
    let frost: Vec<FrostKeyShare> = frost.into_values().collect();
    let (split, split_messages) = run(
        (1..=3).map(|me| SplitAesDkg::new(params(session, me)).unwrap()).collect(),
        |m: &SplitAesDkgMessage| format!("{:?}", std::mem::discriminant(&m.body)),
    );
    let split: Vec<SplitAesKeyShare> = split.into_values().collect();
    let (ecdsa, ecdsa_messages) = run(
        (1..=3).map(|me| EcdsaDkg::new(EcdsaCurve::Secp256k1, params(session, me)).unwrap()).collect(),
        |m: &EcdsaMessage| format!("{}-{:?}", m.round, std::mem::discriminant(&m.body)),
    );
    let ecdsa: Vec<EcdsaKeyShare> = ecdsa.into_values().collect();
    let reshare_params = |me| ReshareParams {
        session,
        me,
        dealers: vec![1, 2, 3],
        new_committee: vec![1, 2, 3],
        new_threshold: 2,
    };
    let frost_old = frost[0].public_keys().shared_key().unwrap();
    let (frost_reshared, reshare_messages) = run(
        frost
            .iter()
            .map(|share| {
                Reshare::new(reshare_params(share.participant()), frost_old.clone(), Some(share.dealer_secret().unwrap()))
                    .unwrap()
            })
            .collect(),
        |m: &ReshareMessage| format!("{:?}", std::mem::discriminant(&m.body)),
    );
    let split_old = split[0].public_keys().shared_key().unwrap();
    let (split_reshared, _) = run(
        split
            .iter()
            .map(|share| {
                Reshare::new(reshare_params(share.participant()), split_old.clone(), Some(share.dealer_secret()))
                    .unwrap()
            })
            .collect(),
        |_: &ReshareMessage| String::new(),
    );
    let ecdsa_public = ecdsa[0].public_keys();
    let (ecdsa_reshared, ecdsa_reshare_messages) = run(
        ecdsa
            .iter()
            .map(|share| EcdsaReshare::new(reshare_params(share.participant()), &ecdsa_public, Some(share)).unwrap())
            .collect(),
        |m: &ReshareMessage| format!("{:?}", std::mem::discriminant(&m.body)),
    );

    // FROST signing: commitments, a signing package, a signature share.
    let message = b"message to sign".to_vec();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for share in &frost[..2] {
        let (n, c) = commit(share, &mut OsRng);
        nonces.insert(share.participant(), n);
        commitments.insert(share.participant(), c);
    }
    let package = signing_package(&commitments, &message).unwrap();
    let first = frost[0].participant();
    let signature_share = sign(&frost[0], nonces.remove(&first).unwrap(), &package).unwrap();
    let partial = evaluate(&split[0], &[5; 16], &[6; 32], &mut OsRng);
    let receipt_partial = evaluate_receipt(&split[0], &[5; 16], &[6; 32], &mut OsRng);
    let split_refs: Vec<&SplitAesKeyShare> = split.iter().collect();
    let blob = encrypt_in_process(&split_refs[..2], &split[0].public_keys(), [5; 16], b"aad", b"plaintext", &mut OsRng)
        .unwrap();

    let frost_key = KeyId([1; 16]);
    let frost_info = key_info(
        frost_key,
        Algorithm::Ed25519,
        frost[0].group_public_key().to_vec(),
        frost[0].public_keys().to_bytes(),
    );
    let ecdsa_info = key_info(
        KeyId([2; 16]),
        Algorithm::EcdsaSecp256k1,
        ecdsa[0].public_key_sec1(),
        ecdsa[0].public_keys().to_bytes(),
    );
    let split_info = key_info(
        KeyId([3; 16]),
        Algorithm::SplitAes256,
        split[0].group_public_key().to_vec(),
        split[0].public_keys().to_bytes(),
    );
    let membership = Membership {
        version: 4,
        threshold: 2,
        nodes: (1..=3).map(|id| MemberEntry { id, address: format!("127.0.0.1:{}", 7000 + id) }).collect(),
    };
    let object = StoredObject {
        id: ObjectId([4; 16]),
        version: 2,
        destroyed: false,
        attributes: vec![(0, vec![1, 0, 0, 0, 0, 0, 0, 0]), (0x11, b"certificate".to_vec())],
    };
    // Real unseal envelopes (to a key made here; node 2; challenge 05…05).
    let (_, unseal_public) = generate_key_pair();
    let unseal_secret = SecretBytes::new(b"ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567".to_vec());
    let new_secret = SecretBytes::new(b"a passphrase of my own".to_vec());
    let unseal_envelope = unseal_public.seal_unseal(2, &[5; 32], &unseal_secret).unwrap();
    let change_envelope = unseal_public.seal_change(2, &[5; 32], &unseal_secret, &new_secret).unwrap();
    let node_status = NodeStatus { node_id: 1, version: "0.1.0".into(), keys: 3, banned: vec![3], sealed: false };
    let audit = AuditPage {
        node: 1,
        first_line: 0,
        lines: vec!["{\"seq\":0,\"event\":\"start\"}".into(), "{\"seq\":1,\"event\":\"sign\"}".into()],
        end: true,
    };
    let error = WireError { kind: ErrorKind::Misbehaviour, message: "node 3 sent a bad share".into(), nodes: vec![3] };

    // --- A store with a key, and its backup (under the fuzz targets' fixed storage key, node 1).
    let store_path = vhsm_fuzz::storage::scratch_dir().join("seeds.redb");
    let _ = std::fs::remove_file(&store_path);
    let store = ShareStore::open(&store_path, vhsm_fuzz::storage::load_key(), 1).unwrap();
    let frost_share = KeyShare::Frost(Box::new(FrostKeyShare::from_bytes(&frost[0].to_bytes()).unwrap()));
    let mut pending = frost_info.clone();
    pending.state = KeyState::Pending;
    store.insert_pending(&pending, &frost_share).unwrap();
    store.activate(frost_key, KeyState::Active).unwrap();
    store.put_object(&object).unwrap();
    store.put_membership(&membership).unwrap();
    let backup = store.backup(1_780_000_100).unwrap();
    drop(store);
    let _ = std::fs::remove_file(&store_path);

    // --- client_request / client_response
    let t = "client_request";
    let attrs = vec![(0x3u64, b"label".to_vec()), (0x102, vec![1, 2])];
    let requests: Vec<(&str, ClientRequest)> = vec![
        ("status", ClientRequest::Status),
        ("token_info", ClientRequest::TokenInfo),
        ("login", ClientRequest::Login { user: PinUser::User, pin: SecretBytes::new(b"123456".to_vec()) }),
        ("logout", ClientRequest::Logout),
        (
            "create_key",
            ClientRequest::CreateKey {
                algorithm: Algorithm::EcdsaP256,
                label: "k".into(),
                pre_active: true,
                attributes: attrs.clone(),
            },
        ),
        ("update_key", ClientRequest::UpdateKey { key_id: frost_key, label: "l".into(), attributes: attrs.clone() }),
        ("destroy_key", ClientRequest::DestroyKey { key_id: frost_key }),
        ("set_key_state", ClientRequest::SetKeyState { key_id: frost_key, state: KeyState::Deactivated }),
        ("create_object", ClientRequest::CreateObject { attributes: object.attributes.clone() }),
        ("list_objects", ClientRequest::ListObjects),
        ("update_object", ClientRequest::UpdateObject { id: object.id, attributes: attrs.clone() }),
        ("destroy_object", ClientRequest::DestroyObject { id: object.id }),
        ("list_keys", ClientRequest::ListKeys),
        ("get_key", ClientRequest::GetKey { key_id: frost_key }),
        ("sign", ClientRequest::Sign { key_id: frost_key, message: message.clone(), hash: Some(HashAlg::Sha384) }),
        ("sign_prehashed", ClientRequest::Sign { key_id: frost_key, message: vec![7; 32], hash: Some(HashAlg::Prehashed) }),
        (
            "encrypt",
            ClientRequest::Encrypt {
                key_id: KeyId([3; 16]),
                plaintext: SecretBytes::new(b"plaintext".to_vec()),
                aad: b"aad".to_vec(),
            },
        ),
        ("decrypt", ClientRequest::Decrypt { blob: blob.clone(), aad: b"aad".to_vec() }),
        ("unban", ClientRequest::Unban { node: 3 }),
        ("get_membership", ClientRequest::GetMembership),
        ("add_node", ClientRequest::AddNode { id: 4, address: "127.0.0.1:7004".into(), approval: Some(approval(&[1, 2, 3, 4], 2)) }),
        ("remove_node", ClientRequest::RemoveNode { id: 4, threshold: Some(2), approval: Some(approval(&[1, 2, 3], 2)) }),
        ("set_threshold", ClientRequest::SetThreshold { threshold: 3, approval: None }),
        ("reshare_key", ClientRequest::ReshareKey { key_id: frost_key, avoid_dealers: vec![2], leave_out: vec![3], approval: Some(approval(&[1, 2], 2)) }),
        ("unseal_node", ClientRequest::UnsealNode { node: 2, envelope: unseal_envelope.clone() }),
        ("backup_node", ClientRequest::BackupNode { node: 1 }),
        ("restore_node", ClientRequest::RestoreNode { node: 1, backup: backup.clone() }),
        ("audit_log", ClientRequest::AuditLog { node: 1, from_line: 300 }),
        ("unseal_challenge", ClientRequest::UnsealChallenge { node: 2 }),
        ("change_unseal_secret", ClientRequest::ChangeUnsealSecret { node: 2, envelope: change_envelope.clone() }),
    ];
    for (name, r) in &requests {
        s.frame(t, name, r);
    }

    let t = "client_response";
    let token = TokenInfo {
        label: "vHSM".into(),
        serial: "0001".into(),
        user_pin_failures: 1,
        user_pin_locked: false,
        so_pin_locked: false,
        max_pin_failures: 10,
        min_pin_len: 4,
        max_pin_len: 64,
    };
    let cluster = ClusterStatus {
        threshold: 2,
        nodes: vec![
            NodeHealth {
                id: 1,
                address: "127.0.0.1:7001".into(),
                reachable: true,
                status: Some(node_status.clone()),
                error: None,
            },
            NodeHealth { id: 2, address: "127.0.0.1:7002".into(), reachable: false, status: None, error: Some("timeout".into()) },
        ],
        behind: vec![ShareBehind { node: 3, key_id: frost_key, held: Some(2), epoch: 3 }],
    };
    let responses: Vec<(&str, ClientResponse)> = vec![
        ("status", ClientResponse::Status(cluster)),
        ("key", ClientResponse::Key(frost_info.clone())),
        ("keys", ClientResponse::Keys(vec![frost_info.clone(), split_info.clone()])),
        ("ok", ClientResponse::Ok),
        ("token", ClientResponse::Token(token)),
        ("object", ClientResponse::Object(object.clone())),
        ("objects", ClientResponse::Objects(vec![object.clone()])),
        ("ciphertext", ClientResponse::Ciphertext(blob.clone())),
        ("plaintext", ClientResponse::Plaintext(SecretBytes::new(b"plaintext".to_vec()))),
        ("membership", ClientResponse::Membership(membership.clone())),
        ("backup", ClientResponse::Backup(backup.clone())),
        ("restored", ClientResponse::Restored { restored: vec![frost_key], skipped: vec![(KeyId([2; 16]), "stale".into())] }),
        ("signature", ClientResponse::Signature { signature: vec![9; 64], signers: vec![1, 2] }),
        ("audit", ClientResponse::Audit(audit.clone())),
        ("error", ClientResponse::Error(error.clone())),
        ("unseal_challenge", ClientResponse::UnsealChallenge { challenge: [5; 32], sealed: true }),
    ];
    for (name, r) in &responses {
        s.frame(t, name, r);
    }
    s.frame(t, "key_ecdsa", &ClientResponse::Key(ecdsa_info.clone()));

    // --- node_request / node_response
    let t = "node_request";
    let requests: Vec<(&str, NodeRequest)> = vec![
        ("status", NodeRequest::Status),
        ("generate_key", NodeRequest::GenerateKey { session, key: frost_info.clone() }),
        ("commit_key", NodeRequest::CommitKey { key_id: frost_key, state: KeyState::PreActive }),
        ("set_key_state", NodeRequest::SetKeyState { key_id: frost_key, state: KeyState::Compromised }),
        ("abort_key", NodeRequest::AbortKey { key_id: frost_key }),
        ("list_keys", NodeRequest::ListKeys),
        ("precommit", NodeRequest::Precommit { count: 16 }),
        (
            "sign_share",
            NodeRequest::SignShare { session, nonce: 0x1234_5678, key_id: frost_key, epoch: 3, package: package.clone() },
        ),
        (
            "ecdsa_sign",
            NodeRequest::EcdsaSign { session, key_id: KeyId([2; 16]), epoch: 0, signers: vec![1, 3], digest: [8; 32] },
        ),
        ("clear_ban", NodeRequest::ClearBan { node: 3 }),
        ("update_key", NodeRequest::UpdateKey { key: frost_info.clone() }),
        ("destroy_key", NodeRequest::DestroyKey { key_id: frost_key }),
        ("put_object", NodeRequest::PutObject { object: object.clone() }),
        ("list_objects", NodeRequest::ListObjects),
        (
            "reshare",
            NodeRequest::Reshare {
                session,
                key: frost_info.clone(),
                dealers: vec![1, 2],
                committee: vec![1, 2, 3],
                threshold: 2,
                approval: Some(approval(&[1, 2, 3], 2)),
            },
        ),
        ("commit_reshare", NodeRequest::CommitReshare { key_id: frost_key, epoch: 4 }),
        ("abort_reshare", NodeRequest::AbortReshare { key_id: frost_key, epoch: 4 }),
        ("list_staged", NodeRequest::ListStaged),
        ("set_membership", NodeRequest::SetMembership { membership: membership.clone() }),
        (
            "evaluate",
            NodeRequest::Evaluate {
                key_id: KeyId([3; 16]),
                purpose: KeyUse::Decrypt,
                epoch: 0,
                alpha: [6; 32],
                receipt: CiphertextBlob::parse(&blob).unwrap().receipt,
            },
        ),
        ("unseal", NodeRequest::Unseal { envelope: unseal_envelope.clone() }),
        ("backup", NodeRequest::Backup),
        ("restore", NodeRequest::Restore { backup: backup.clone(), keys: vec![frost_key] }),
        (
            "batch",
            NodeRequest::Batch(vec![
                NodeRequest::SignShare { session, nonce: 1, key_id: frost_key, epoch: 3, package: package.clone() },
                NodeRequest::Evaluate {
                    key_id: KeyId([3; 16]),
                    purpose: KeyUse::Encrypt,
                    epoch: 0,
                    alpha: [6; 32],
                    receipt: Vec::new(),
                },
            ]),
        ),
        (
            "on_behalf",
            NodeRequest::OnBehalf {
                requester: "alice (user)".into(),
                purpose: "sign".into(),
                request: Box::new(NodeRequest::EcdsaSign {
                    session,
                    key_id: KeyId([2; 16]),
                    epoch: 0,
                    signers: vec![1, 2],
                    digest: [8; 32],
                }),
            },
        ),
        ("login_failed", NodeRequest::LoginFailed { user: PinUser::SecurityOfficer, error: "wrong PIN".into() }),
        ("audit_log", NodeRequest::AuditLog { from_line: 10, max_lines: 2000 }),
        ("unseal_challenge", NodeRequest::UnsealChallenge),
        ("change_unseal_secret", NodeRequest::ChangeUnsealSecret { envelope: change_envelope.clone() }),
        ("check_pin", NodeRequest::CheckPin { user: PinUser::User, pin: SecretBytes::new(b"12345678".to_vec()) }),
        ("pin_state", NodeRequest::PinState),
    ];
    for (name, r) in &requests {
        s.frame(t, name, r);
    }

    let t = "node_response";
    let responses: Vec<(&str, NodeResponse)> = vec![
        ("status", NodeResponse::Status(node_status.clone())),
        ("key_generated", NodeResponse::KeyGenerated { public_keys: frost[0].public_keys().to_bytes() }),
        ("ok", NodeResponse::Ok),
        ("keys", NodeResponse::Keys(vec![frost_info.clone(), ecdsa_info.clone()])),
        (
            "precommitments",
            NodeResponse::Precommitments(
                commitments.values().enumerate().map(|(i, c)| Precommitment { id: i as u64 * 77, commitments: c.clone() }).collect(),
            ),
        ),
        ("signature_share", NodeResponse::SignatureShare(signature_share.clone())),
        ("ecdsa_signature", NodeResponse::EcdsaSignature(vec![9; 64])),
        ("objects", NodeResponse::Objects(vec![object.clone()])),
        ("partial", NodeResponse::Partial(partial.clone())),
        ("encryption_partial", NodeResponse::EncryptionPartial { partial: partial.clone(), receipt: receipt_partial }),
        ("reshared", NodeResponse::Reshared { staged: Some(split_info.clone()), excluded: vec![2] }),
        ("reshared_none", NodeResponse::Reshared { staged: None, excluded: vec![] }),
        ("key", NodeResponse::Key(frost_info.clone())),
        ("backup", NodeResponse::Backup(backup.clone())),
        ("audit", NodeResponse::Audit(audit.clone())),
        (
            "batch",
            NodeResponse::Batch(vec![
                NodeResponse::SignatureShare(signature_share.clone()),
                NodeResponse::Partial(partial.clone()),
                NodeResponse::Error(error.clone()),
            ]),
        ),
        ("error", NodeResponse::Error(error.clone())),
        (
            "pin_state",
            NodeResponse::PinState(PinState {
                user: PinCounter { failures: 2, locked: false },
                security_officer: PinCounter { failures: 5, locked: true },
                max_failures: 5,
            }),
        ),
    ];
    for (name, r) in &responses {
        s.frame(t, name, r);
    }

    // --- mesh_message and protocol_messages: the captured messages.
    let mut mesh = |name: String, payload: MeshPayload| {
        s.frame("mesh_message", &name, &MeshMessage { session, id: 0x0102_0304_0506_0708, payload });
    };
    for (i, m) in frost_messages.values().enumerate() {
        mesh(format!("frost_dkg_{i}"), MeshPayload::FrostDkg(m.clone()));
    }
    for (i, m) in ecdsa_messages.values().enumerate() {
        mesh(format!("ecdsa_dkg_{i}"), MeshPayload::EcdsaDkg(m.clone()));
    }
    if let Some(m) = ecdsa_messages.values().next() {
        mesh("ecdsa_sign".into(), MeshPayload::EcdsaSign(m.clone()));
        mesh("ecdsa_refresh".into(), MeshPayload::EcdsaRefresh(m.clone()));
    }
    for (i, m) in split_messages.values().enumerate() {
        mesh(format!("split_aes_dkg_{i}"), MeshPayload::SplitAesDkg(m.clone()));
    }
    for (i, m) in reshare_messages.values().chain(ecdsa_reshare_messages.values()).enumerate() {
        mesh(format!("reshare_{i}"), MeshPayload::Reshare(m.clone()));
    }
    mesh("abort".into(), MeshPayload::Abort("node 3: its share of this key is at epoch 0, not 1".into()));

    let t = "protocol_messages";
    for (i, m) in frost_messages.values().enumerate() {
        s.selected(t, &format!("0_frost_dkg_{i}"), 0, &m.to_bytes().unwrap());
    }
    for (i, m) in ecdsa_messages.values().enumerate() {
        s.selected(t, &format!("1_ecdsa_{i}"), 1, &m.to_bytes().unwrap());
    }
    for (i, m) in reshare_messages.values().chain(ecdsa_reshare_messages.values()).enumerate() {
        s.selected(t, &format!("2_reshare_{i}"), 2, &m.to_bytes().unwrap());
        if let ReshareBody::Deal(payload) = &m.body {
            assert!(DealPayload::from_bytes(payload).is_some());
            s.selected(t, &format!("4_deal_{i}"), 4, payload);
        }
    }
    let no_deal = DealPayload { context: [1; 32], commitments: None };
    s.selected(t, "4_deal_none", 4, &no_deal.to_bytes().unwrap());
    for (i, m) in split_messages.values().enumerate() {
        s.selected(t, &format!("3_split_aes_dkg_{i}"), 3, &m.to_bytes().unwrap());
        if let vhsm_protocols::split_aes::SplitAesDkgBody::Round1(payload) = &m.body {
            assert!(DkgRound1Payload::from_bytes(payload).is_ok());
            s.selected(t, &format!("5_round1_{i}"), 5, payload);
        }
    }
    s.selected(t, "6_partial", 6, &partial.to_bytes().unwrap());
    s.selected(t, "7_signing_package", 7, &package.0);
    for (i, c) in commitments.values().enumerate() {
        s.selected(t, &format!("8_commitments_{i}"), 8, &c.0);
    }
    let signature = EcdsaSignature { r: [1; 32], s: [2; 32] };
    s.selected(t, "9_ecdsa_signature", 9, &signature.to_bytes());

    // --- unseal_envelope (the target makes its own key pair: these envelopes reach its header checks, and the
    // `0xff` inputs its seal/open round trip)
    let t = "unseal_envelope";
    s.put(t, "envelope_node_2", &unseal_envelope);
    s.put(t, "change_node_2", &change_envelope);
    let mut for_node_1 = unseal_public.seal_unseal(1, &[7; 32], &unseal_secret).unwrap();
    s.put(t, "envelope_node_1_other_key", &for_node_1);
    for_node_1[4] ^= 1;
    s.put(t, "envelope_node_1_other_challenge", &for_node_1);
    let mut round_trip = vec![0xff, 0, 0x01, 0x23, 0, 0];
    round_trip.extend_from_slice(unseal_secret.expose());
    s.put(t, "round_trip_unseal", &round_trip);
    let mut round_trip = vec![0xff, 1, 0x02, 0x34, 0, 39];
    round_trip.extend_from_slice(unseal_secret.expose());
    round_trip.extend_from_slice(new_secret.expose());
    s.put(t, "round_trip_change", &round_trip);

    // --- ciphertext_blob
    let t = "ciphertext_blob";
    s.put(t, "real", &blob);
    s.put(t, "empty_plaintext", &encrypt_in_process(&split_refs[1..], &split[0].public_keys(), [5; 16], b"", b"", &mut OsRng).unwrap());
    s.put(t, "truncated", &blob[..blob.len() - 20]);
    let mut v3 = blob.clone();
    v3[0] = 3;
    s.put(t, "version_3", &v3);
    // A version-1 blob (no receipt): the header without its receipt.
    let parsed = CiphertextBlob::parse(&blob).unwrap();
    let v1 = CiphertextBlob { version: 1, receipt: Vec::new(), ..parsed };
    s.put(t, "version_1", &v1.to_bytes());

    // --- backup_header
    let t = "backup_header";
    s.put(t, "real", &backup);
    let header = BackupHeader {
        format: FORMAT_VERSION,
        node: 2,
        created_unix: 1_780_000_000,
        keys: (0..4u8)
            .map(|i| BackupKey {
                id: KeyId([i; 16]),
                epoch: u64::from(i) * 1000,
                state: [KeyState::Active, KeyState::Deactivated, KeyState::PreActive, KeyState::Compromised]
                    [usize::from(i)],
            })
            .collect(),
    };
    s.put(t, "four_keys", &write_file(&header, b"sealed body").unwrap());
    s.put(t, "no_keys", &write_file(&BackupHeader { keys: vec![], ..header.clone() }, b"").unwrap());

    // --- sealed_record (fixed key; binding node 1, a share of key 07…07)
    let t = "sealed_record";
    let key = vhsm_fuzz::storage::key();
    let bound = Subject::Key(KeyId([7; 16]));
    s.put(t, "share_opens", &seal(key, 1, RecordKind::Share, bound, 3, &frost[0].to_bytes()));
    s.put(t, "share_empty", &seal(key, 1, RecordKind::Share, bound, 0, b""));
    s.put(t, "keyinfo_other_kind", &seal(key, 1, RecordKind::KeyInfo, bound, 3, b"\x02metadata"));
    s.put(t, "other_node", &seal(key, 2, RecordKind::Share, bound, 3, b"share"));
    let mut layout = vec![0xff, 0x00];
    layout.extend_from_slice(&5u64.to_be_bytes());
    layout.extend_from_slice(&40u16.to_be_bytes());
    layout.extend_from_slice(b"a plaintext to seal and open again");
    s.put(t, "layout_share", &layout);
    layout[1] = 0x0d; // another kind and subject
    s.put(t, "layout_object", &layout);
    s.put(t, "bound_share_opens", &seal_bound(key, 1, RecordKind::Share, bound, 3, 9, &frost[0].to_bytes()));
    s.put(t, "bound_keyinfo_other_kind", &seal_bound(key, 1, RecordKind::KeyInfo, bound, 3, 9, b"\x02metadata"));
    let mut bound_layout = vec![0xfe, 0x01];
    bound_layout.extend_from_slice(&5u64.to_be_bytes());
    bound_layout.extend_from_slice(&7u64.to_be_bytes());
    bound_layout.extend_from_slice(&40u16.to_be_bytes());
    bound_layout.extend_from_slice(b"a record bound to a revision");
    s.put(t, "bound_layout_keyinfo", &bound_layout);
    s.put(t, "pin_counter_other_kind", &seal(key, 1, RecordKind::PinCounter, Subject::Pin(PinUser::User), 0, b"\x01\x03\x01"));
    let key_file = SealedKeyFile::wrap(key, b"passphrase", KdfParams::MINIMUM).unwrap();
    let mut weak = key_file.clone();
    weak[17..21].copy_from_slice(&8u32.to_be_bytes());
    s.put(t, "key_file_weak_params", &weak);
    let mut huge = key_file.clone();
    huge[21..25].copy_from_slice(&65u32.to_be_bytes());
    s.put(t, "key_file_too_many_passes", &huge);
    s.put(t, "key_file_truncated", &key_file[..100]);

    // --- store_record
    let t = "store_record";
    s.selected(t, "0_share_frost", 0, &KeyShare::Frost(Box::new(FrostKeyShare::from_bytes(&frost[1].to_bytes()).unwrap())).to_bytes());
    s.selected(t, "0_share_split_aes", 0, &KeyShare::SplitAes(Box::new(SplitAesKeyShare::from_bytes(&split[1].to_bytes()).unwrap())).to_bytes());
    s.selected(t, "0_share_ecdsa", 0, &KeyShare::Ecdsa(std::sync::Arc::new(EcdsaKeyShare::from_bytes(&ecdsa[1].to_bytes()).unwrap())).to_bytes());
    s.selected(t, "1_frost_public", 1, &frost[0].public_keys().to_bytes());
    s.selected(t, "2_ecdsa_public", 2, &ecdsa[0].public_keys().to_bytes());
    s.selected(t, "3_split_aes_public", 3, &split[0].public_keys().to_bytes());
    let body = BackupBody {
        header: header.clone(),
        keys: vec![KeyRecords { id: frost_key, info: vec![1; 40], share: vec![2; 40] }],
        objects: vec![object.clone()],
        membership: Some(membership.clone()),
    };
    s.selected(t, "4_backup_body", 4, &encode_body(&body).unwrap());
    if let Some(o) = frost_reshared.values().next() {
        s.selected(t, "5_reshare_output_ed25519", 5, &o.to_bytes());
        s.selected(t, "8_shared_key_ed25519", 8, &o.public().to_bytes());
    }
    if let Some(o) = split_reshared.values().next() {
        s.selected(t, "6_reshare_output_ristretto", 6, &o.to_bytes());
        s.selected(t, "9_shared_key_ristretto", 9, &o.public().to_bytes());
    }
    if let Some(o) = ecdsa_reshared.values().next() {
        s.selected(t, "7_reshare_output_ecdsa", 7, &o.to_bytes());
    }
    let mut record = vec![2u8];
    record.extend(postcard::to_stdvec(&KeyInfo { id: KeyId([9; 16]), ..frost_info.clone() }).unwrap());
    s.selected(t, "11_key_info_record", 11, &record);
    let mut wrong = vec![2u8];
    wrong.extend(postcard::to_stdvec(&split_info).unwrap());
    s.selected(t, "11_key_info_other_key", 11, &wrong);
    let counter = PinCounter { failures: 3, locked: true };
    s.selected(t, "14_pin_counter_record", 14, &vhsm_node::records::encode_pin_counter(&counter).unwrap());

    eprintln!("wrote {} seeds, {} bytes, under {}", s.written, s.bytes, Path::new(&root).display());
}
