//! `vhsm_wire::frame::decode::<MeshMessage>` (node → node: FROST DKG, ECDSA DKG/signing/refresh, split-AES DKG and
//! reshare messages) from arbitrary bytes: nothing may panic, and what decodes re-encodes canonically. Each protocol
//! message it carries must also survive its own codec (`to_bytes`/`from_bytes`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_protocols::{
    ecdsa::EcdsaMessage, frost::dkg::DkgMessage, reshare::ReshareMessage, split_aes::dkg::SplitAesDkgMessage,
};
use vhsm_wire::mesh::{MeshMessage, MeshPayload};

fuzz_target!(|data: &[u8]| {
    let Some(message) = vhsm_fuzz::frame_round_trip::<MeshMessage>("MeshMessage", data) else { return };
    // The carried message through its own codec: the version byte is checked there, not by the frame.
    let inner = match &message.payload {
        MeshPayload::FrostDkg(m) => m.to_bytes().map(|b| (DkgMessage::from_bytes(&b).map(|x| x.to_bytes()), b)),
        MeshPayload::EcdsaDkg(m) | MeshPayload::EcdsaSign(m) | MeshPayload::EcdsaRefresh(m) => {
            m.to_bytes().map(|b| (EcdsaMessage::from_bytes(&b).map(|x| x.to_bytes()), b))
        }
        MeshPayload::SplitAesDkg(m) => {
            m.to_bytes().map(|b| (SplitAesDkgMessage::from_bytes(&b).map(|x| x.to_bytes()), b))
        }
        MeshPayload::Reshare(m) => m.to_bytes().map(|b| (ReshareMessage::from_bytes(&b).map(|x| x.to_bytes()), b)),
        // A member giving up: only its reason, a string (the frame round trip checked it).
        MeshPayload::Abort(_) => return,
    };
    let (decoded, bytes) = inner.expect("a decoded protocol message encodes");
    if let Ok(again) = decoded {
        // Refused only for another version byte; what it accepts re-encodes to the same bytes.
        assert_eq!(again.expect("re-encodes"), bytes, "protocol message round trip");
    }
});
