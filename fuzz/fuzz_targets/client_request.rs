//! `vhsm_wire::frame::decode::<ClientRequest>` (client → coordinator) from arbitrary bytes: nothing may panic, and
//! what decodes re-encodes canonically (see `src/lib.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_wire::client_api::ClientRequest;

fuzz_target!(|data: &[u8]| {
    let _ = vhsm_fuzz::frame_round_trip::<ClientRequest>("ClientRequest", data);
});
