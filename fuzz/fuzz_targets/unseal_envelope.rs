//! A node's unseal envelopes, `vhsm_node::unseal::UnsealPrivateKey::open` (HPKE, RFC 9180, bound to the node id,
//! the purpose and the node's challenge), with a key pair made at random once per run (node 1, a fixed challenge):
//!
//! - any input: `open` never panics and refuses it for both purposes — nobody but the holder of the public key can
//!   make an envelope that opens, and the fuzzer never sees it — by the right reason: malformed (short, long,
//!   another version) before anything else, then another node, purpose or challenge by its header, else
//!   "does not open";
//! - inputs `0xff ‖ purpose (1) ‖ flip (2, BE) ‖ split (2, BE) ‖ secret bytes`: the secret (for a change, cut at
//!   `split` into old and new) sealed to the public key opens back to the same secret(s); the envelope with the bit
//!   at `flip` flipped, truncated by one byte, for another node, another purpose or answering another challenge is
//!   refused.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vhsm_core::SecretBytes;
use vhsm_node::unseal::{
    generate_key_pair, EnvelopeError, Opened, Purpose, UnsealPrivateKey, UnsealPublicKey, MAX_ENVELOPE_LEN,
    MAX_SECRET_LEN, UNSEAL_ENVELOPE_VERSION,
};

const NODE: u16 = 1;
const CHALLENGE: [u8; 32] = [7; 32];

fn keys() -> &'static (UnsealPrivateKey, UnsealPublicKey) {
    static KEYS: OnceLock<(UnsealPrivateKey, UnsealPublicKey)> = OnceLock::new();
    KEYS.get_or_init(generate_key_pair)
}

fn refused(data: &[u8], purpose: Purpose, what: &str) -> EnvelopeError {
    match keys().0.open(NODE, purpose, Some(&CHALLENGE), data) {
        Ok(_) => panic!("{what}: an envelope opened that must not"),
        Err(e) => e,
    }
}

fn arbitrary(data: &[u8]) {
    for purpose in [Purpose::Unseal, Purpose::ChangeSecret] {
        let e = refused(data, purpose, "arbitrary input");
        let header_ok = data.len() <= MAX_ENVELOPE_LEN
            && data.len() >= 36 + 32 + 16
            && data.first() == Some(&UNSEAL_ENVELOPE_VERSION);
        match e {
            EnvelopeError::Malformed(_) => assert!(!header_ok, "a well-formed envelope called malformed: {e}"),
            EnvelopeError::OtherNode { made_for, node } => {
                assert!(header_ok);
                assert_eq!(node, NODE);
                assert_eq!(made_for, u16::from_be_bytes([data[1], data[2]]));
                assert_ne!(made_for, NODE);
            }
            EnvelopeError::WrongPurpose { .. } => {
                assert!(header_ok && data[1..3] == NODE.to_be_bytes());
                assert_ne!(data[3], purpose as u8);
            }
            EnvelopeError::ChallengeMismatch { node } => {
                assert!(header_ok && node == NODE && data[3] == purpose as u8);
                assert_ne!(data[4..36], CHALLENGE);
            }
            EnvelopeError::DoesNotOpen { node } => {
                assert!(header_ok && node == NODE && data[3] == purpose as u8);
                assert_eq!(data[4..36], CHALLENGE);
            }
            other => panic!("arbitrary input refused for an unexpected reason: {other}"),
        }
    }
}

fn round_trip(data: &[u8]) {
    let [purpose, f1, f2, s1, s2, rest @ ..] = data else { return };
    let purpose = if purpose & 1 == 0 { Purpose::Unseal } else { Purpose::ChangeSecret };
    let public = &keys().1;
    let (envelope, expected): (Vec<u8>, Vec<Vec<u8>>) = match purpose {
        Purpose::Unseal => {
            if rest.is_empty() || rest.len() > MAX_SECRET_LEN {
                return;
            }
            let secret = SecretBytes::new(rest.to_vec());
            (public.seal_unseal(NODE, &CHALLENGE, &secret).unwrap(), vec![rest.to_vec()])
        }
        Purpose::ChangeSecret => {
            let split = usize::from(u16::from_be_bytes([*s1, *s2])) % (rest.len().max(1));
            let (old, new) = rest.split_at(split);
            if old.is_empty() || new.is_empty() || old.len() > MAX_SECRET_LEN || new.len() > MAX_SECRET_LEN {
                return;
            }
            let envelope = public
                .seal_change(NODE, &CHALLENGE, &SecretBytes::new(old.to_vec()), &SecretBytes::new(new.to_vec()))
                .unwrap();
            (envelope, vec![old.to_vec(), new.to_vec()])
        }
    };
    let private = &keys().0;
    match private.open(NODE, purpose, Some(&CHALLENGE), &envelope).unwrap() {
        Opened::Unseal(secret) => assert_eq!(vec![secret.expose().to_vec()], expected),
        Opened::ChangeSecret { old, new } => assert_eq!(vec![old.expose().to_vec(), new.expose().to_vec()], expected),
    }
    let flip = usize::from(u16::from_be_bytes([*f1, *f2])) % (envelope.len() * 8);
    let mut flipped = envelope.clone();
    flipped[flip / 8] ^= 1 << (flip % 8);
    refused(&flipped, purpose, "a flipped bit");
    refused(&envelope[..envelope.len() - 1], purpose, "a truncation");
    let other = if purpose == Purpose::Unseal { Purpose::ChangeSecret } else { Purpose::Unseal };
    refused(&envelope, other, "another purpose");
    assert!(private.open(NODE + 1, purpose, Some(&CHALLENGE), &envelope).is_err(), "another node");
    assert!(private.open(NODE, purpose, Some(&[8; 32]), &envelope).is_err(), "another challenge");
    assert!(private.open(NODE, purpose, None, &envelope).is_err(), "no challenge");
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0xff, rest)) => round_trip(rest),
        _ => arbitrary(data),
    }
});
