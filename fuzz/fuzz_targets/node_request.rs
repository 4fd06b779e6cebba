//! `vhsm_wire::frame::decode::<NodeRequest>` (coordinator → node) from arbitrary bytes: nothing may panic, and what
//! decodes re-encodes canonically. The protocol payloads it carries (signing packages) are decoded further by
//! `protocol_messages`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_wire::node_api::NodeRequest;

fuzz_target!(|data: &[u8]| {
    let _ = vhsm_fuzz::frame_round_trip::<NodeRequest>("NodeRequest", data);
});
