//! `vhsm_wire::frame::decode::<ClientResponse>` (coordinator → client, what the PKCS#11 module and the `vhsm`
//! command read) from arbitrary bytes: nothing may panic, and what decodes re-encodes canonically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_wire::client_api::ClientResponse;

fuzz_target!(|data: &[u8]| {
    let _ = vhsm_fuzz::frame_round_trip::<ClientResponse>("ClientResponse", data);
});
