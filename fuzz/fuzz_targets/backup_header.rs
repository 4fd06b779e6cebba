//! `vhsm_core::backup::read_header` (the clear header of a node backup file, which the coordinator and the
//! `vhsm` command read before a restore) from arbitrary bytes: nothing may panic; what it accepts is written back
//! with `write_file` and read again to the same header and body, and the input must have been canonical.
//!
//! Finding `backup-header-trailing` (tolerate it with `VHSM_FUZZ_TOLERATE=backup-header-trailing`): `read_header`
//! decodes the header region with `postcard::from_bytes`, which ignores bytes after the header, so a file whose
//! header length covers extra bytes is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vhsm_core::backup::{read_header, write_file, BackupHeader, MAGIC};

fuzz_target!(|data: &[u8]| {
    let Ok((header, body)) = read_header(data) else { return };
    // Every accepted file has its body at the end of the input.
    assert!(data.ends_with(body));
    let file = write_file(&header, body).expect("an accepted header is written back");
    let (again, body_again) = read_header(&file).expect("a written file reads");
    assert_eq!(again, header, "header round trip");
    assert_eq!(body_again, body, "body round trip");
    assert_eq!(write_file(&again, body_again).expect("writes"), file, "round trip not stable");

    // The header region as the input declares it: magic (16) ‖ version (1) ‖ length (4) ‖ header.
    let region = &data[MAGIC.len() + 5..data.len() - body.len()];
    if !vhsm_fuzz::tolerated("backup-header-trailing") {
        let (_, rest) = postcard::take_from_bytes::<BackupHeader>(region).expect("the region decodes");
        assert!(
            rest.is_empty(),
            "read_header accepted {} trailing bytes inside the header region: {}",
            rest.len(),
            vhsm_fuzz::hex(data)
        );
    }
    vhsm_fuzz::check_canonical("backup file", data, &file);
});
