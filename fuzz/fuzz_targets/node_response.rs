//! `vhsm_wire::frame::decode::<NodeResponse>` (node → coordinator) from arbitrary bytes: nothing may panic, and
//! what decodes re-encodes canonically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_wire::node_api::NodeResponse;

fuzz_target!(|data: &[u8]| {
    let _ = vhsm_fuzz::frame_round_trip::<NodeResponse>("NodeResponse", data);
});
