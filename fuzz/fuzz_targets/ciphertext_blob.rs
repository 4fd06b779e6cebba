//! `vhsm_core::ciphertext::CiphertextBlob::parse` (the split-AES blob a client hands back to decrypt) from arbitrary
//! bytes: nothing may panic, a blob is accepted exactly when it is version 1 and at least `MIN_BLOB_LEN` long, and
//! `to_bytes` gives the input back byte for byte (the format has one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_core::ciphertext::{CiphertextBlob, BLOB_VERSION, MIN_BLOB_LEN};

fuzz_target!(|data: &[u8]| {
    let parsed = CiphertextBlob::parse(data);
    let expected_ok = data.first() == Some(&BLOB_VERSION) && data.len() >= MIN_BLOB_LEN;
    assert_eq!(parsed.is_ok(), expected_ok, "accepted {} bytes: {:?}", data.len(), parsed);
    if let Ok(blob) = parsed {
        let bytes = blob.to_bytes();
        vhsm_fuzz::check_exact("CiphertextBlob", data, &bytes);
        assert_eq!(CiphertextBlob::parse(&bytes).as_ref(), Ok(&blob));
        assert_eq!(&blob.header()[..], &data[..blob.header().len()]);
    }
});
