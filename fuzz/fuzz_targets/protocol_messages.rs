//! The public decoders of protocol messages and of the byte strings they carry, from arbitrary bytes (the first
//! byte selects the decoder). Nothing may panic; what decodes re-encodes to the same bytes (postcard messages: to a
//! canonical form, see `src/lib.rs`).
//!
//! | selector % 10 | decoder |
//! |---|---|
//! | 0 | `frost::dkg::DkgMessage::from_bytes` |
//! | 1 | `ecdsa::EcdsaMessage::from_bytes` |
//! | 2 | `reshare::ReshareMessage::from_bytes` |
//! | 3 | `split_aes::dkg::SplitAesDkgMessage::from_bytes` |
//! | 4 | `reshare::DealPayload::from_bytes` (inside `ReshareBody::Deal`) |
//! | 5 | `split_aes::DkgRound1Payload::from_bytes` (inside `SplitAesDkgBody::Round1`) |
//! | 6 | `split_aes::PartialEvaluation::from_bytes` |
//! | 7 | `frost::FrostSigningPackage::decode` (in `NodeRequest::SignShare`) |
//! | 8 | `frost::FrostCommitments::decode` (in `NodeResponse::Precommitments`) |
//! | 9 | `ecdsa::EcdsaSignature::from_bytes` |
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_fuzz::{check_canonical, check_exact};
use vhsm_protocols::{
    ecdsa::{EcdsaMessage, EcdsaSignature},
    frost::{dkg::DkgMessage, FrostCommitments, FrostSigningPackage},
    reshare::{DealPayload, ReshareMessage},
    split_aes::{dkg::SplitAesDkgMessage, DkgRound1Payload, PartialEvaluation},
    ProtocolError,
};

/// A postcard-encoded message with a version byte: decode, re-encode, decode again.
fn message<T>(
    what: &str,
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, ProtocolError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, ProtocolError>,
) {
    let Ok(value) = decode(data) else { return };
    let first = encode(&value).unwrap_or_else(|e| panic!("{what}: does not re-encode: {e}"));
    let again = decode(&first).unwrap_or_else(|e| panic!("{what}: the re-encoding does not decode: {e}"));
    let second = encode(&again).unwrap_or_else(|e| panic!("{what}: second re-encoding failed: {e}"));
    assert_eq!(first, second, "{what}: the round trip is not stable");
    check_canonical(what, data, &first);
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = data.split_first() else { return };
    match selector % 10 {
        0 => message("DkgMessage", data, DkgMessage::from_bytes, DkgMessage::to_bytes),
        1 => message("EcdsaMessage", data, EcdsaMessage::from_bytes, EcdsaMessage::to_bytes),
        2 => message("ReshareMessage", data, ReshareMessage::from_bytes, ReshareMessage::to_bytes),
        3 => message("SplitAesDkgMessage", data, SplitAesDkgMessage::from_bytes, SplitAesDkgMessage::to_bytes),
        4 => message(
            "DealPayload",
            data,
            |b| DealPayload::from_bytes(b).ok_or_else(|| ProtocolError::Encoding("deal".into())),
            DealPayload::to_bytes,
        ),
        5 => {
            if let Ok(payload) = DkgRound1Payload::from_bytes(data) {
                let bytes = payload.to_bytes();
                check_exact("DkgRound1Payload", data, &bytes);
                assert_eq!(DkgRound1Payload::from_bytes(&bytes).ok(), Some(payload));
            }
        }
        6 => message("PartialEvaluation", data, PartialEvaluation::from_bytes, PartialEvaluation::to_bytes),
        7 => {
            if let Ok(package) = FrostSigningPackage(data.to_vec()).decode() {
                let _ = package.message();
                let _ = package.signers();
            }
        }
        8 => {
            let _ = FrostCommitments(data.to_vec()).decode();
        }
        _ => {
            if let Ok(signature) = EcdsaSignature::from_bytes(data) {
                check_exact("EcdsaSignature", data, &signature.to_bytes());
            }
        }
    }
});
