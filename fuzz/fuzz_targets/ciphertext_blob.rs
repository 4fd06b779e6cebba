//! `vhsm_core::ciphertext::CiphertextBlob::parse` (the split-AES blob a client hands back to decrypt) from arbitrary
//! bytes: nothing may panic, a blob is accepted exactly when it is version 1 and at least `MIN_BLOB_LEN` long, or
//! version 2 with a receipt of whole entries and long enough for it, and `to_bytes` gives the input back byte for
//! byte (the format has one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_core::ciphertext::{
    CiphertextBlob, BLOB_VERSION, BLOB_VERSION_1, HEADER_LEN, MIN_BLOB_LEN, RECEIPT_ENTRY_LEN,
};

fuzz_target!(|data: &[u8]| {
    let parsed = CiphertextBlob::parse(data);
    let expected_ok = match data.first() {
        Some(&BLOB_VERSION_1) => data.len() >= MIN_BLOB_LEN,
        Some(&BLOB_VERSION) => match data.get(HEADER_LEN..HEADER_LEN + 2) {
            Some(&[high, low]) => {
                let receipt = usize::from(u16::from_be_bytes([high, low]));
                receipt % RECEIPT_ENTRY_LEN == 0 && data.len() >= MIN_BLOB_LEN + 2 + receipt
            }
            _ => false,
        },
        _ => false,
    };
    assert_eq!(parsed.is_ok(), expected_ok, "accepted {} bytes: {:?}", data.len(), parsed);
    if let Ok(blob) = parsed {
        let bytes = blob.to_bytes();
        vhsm_fuzz::check_exact("CiphertextBlob", data, &bytes);
        assert_eq!(CiphertextBlob::parse(&bytes).as_ref(), Ok(&blob));
        assert_eq!(&blob.header()[..], &data[..blob.header().len()]);
    }
});
