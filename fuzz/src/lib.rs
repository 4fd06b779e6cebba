//! Helpers shared by the fuzz targets: the round-trip checks every decoder must pass.
//!
//! A decoder passes when, for every input it accepts:
//!
//! 1. the value re-encodes, the re-encoding decodes, and encoding that again gives the same bytes (a stable round
//!    trip);
//! 2. the input was canonical: the re-encoding equals the input. Postcard (the encoding of every framed message)
//!    accepts over-long varints (`0x80 0x00` for 0), which re-encode shorter; [`check_canonical`] allows exactly
//!    that (re-encoding strictly shorter than the input) unless the `strict` feature is on, and refuses any other
//!    difference (same length but other bytes, or a longer re-encoding).
//!
//! Findings already reported and not fixed yet can be tolerated with `VHSM_FUZZ_TOLERATE=name,name` (see
//! [`tolerated`]), so that a run explores past them.

use std::sync::OnceLock;

use serde::{de::DeserializeOwned, Serialize};
use vhsm_wire::frame;

/// Asserts that `reencoded` (the encoding of what `input` decoded to) is the canonical form of `input`.
pub fn check_canonical(what: &str, input: &[u8], reencoded: &[u8]) {
    if reencoded == input {
        return;
    }
    if cfg!(feature = "strict") || reencoded.len() >= input.len() {
        panic!(
            "{what}: non-canonical encoding accepted\n input:      {}\n re-encoded: {}",
            hex(input),
            hex(reencoded)
        );
    }
}

/// Asserts that `input` is canonical where the format has exactly one encoding per value (no varints).
pub fn check_exact(what: &str, input: &[u8], reencoded: &[u8]) {
    assert!(
        reencoded == input,
        "{what}: non-canonical encoding accepted\n input:      {}\n re-encoded: {}",
        hex(input),
        hex(reencoded)
    );
}

/// Decodes a frame as `T` (`vhsm_wire::frame::decode`); if it decodes, checks the round trip and canonicity.
pub fn frame_round_trip<T: Serialize + DeserializeOwned>(what: &str, data: &[u8]) -> Option<T> {
    let value: T = frame::decode(data).ok()?;
    let first = frame::encode(&value).unwrap_or_else(|e| panic!("{what}: a decoded frame does not re-encode: {e}"));
    let again: T = frame::decode(&first).unwrap_or_else(|e| panic!("{what}: a re-encoded frame does not decode: {e}"));
    let second = frame::encode(&again).unwrap_or_else(|e| panic!("{what}: second re-encoding failed: {e}"));
    assert_eq!(first, second, "{what}: the round trip is not stable");
    check_canonical(what, data, &first);
    Some(value)
}

/// A postcard round trip of a value already decoded from `input` (by the project's decoder); `decode` is that
/// decoder, applied to the re-encoding.
pub fn postcard_round_trip<T: Serialize>(
    what: &str,
    input: &[u8],
    value: &T,
    decode: impl Fn(&[u8]) -> Option<T>,
) {
    let first = postcard::to_stdvec(value).unwrap_or_else(|e| panic!("{what}: does not re-encode: {e}"));
    let again = decode(&first).unwrap_or_else(|| panic!("{what}: the re-encoding does not decode"));
    let second = postcard::to_stdvec(&again).unwrap_or_else(|e| panic!("{what}: second re-encoding failed: {e}"));
    assert_eq!(first, second, "{what}: the round trip is not stable");
    check_canonical(what, input, &first);
}

/// Whether the finding `name` is to be tolerated in this run (`VHSM_FUZZ_TOLERATE=name,name,…`, or `all`).
pub fn tolerated(name: &str) -> bool {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("VHSM_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|t| t == name || t == "all")
}

/// Lowercase hex, shortened past 256 bytes.
pub fn hex(bytes: &[u8]) -> String {
    let shown = bytes.get(..256).unwrap_or(bytes);
    let mut s: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    if shown.len() < bytes.len() {
        s.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    s
}

/// The fixed storage key the node-side targets seal and open with (node API only takes a key file).
pub mod storage {
    use std::sync::OnceLock;

    use vhsm_node::seal::StorageKey;

    /// 32 bytes, fixed.
    pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    /// A private directory for this process (under /dev/shm when there is one: the store's commits stay in memory).
    pub fn scratch_dir() -> &'static std::path::Path {
        static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let base = if std::path::Path::new("/dev/shm").is_dir() {
                std::path::PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            let dir = base.join(format!("vhsm-fuzz-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch directory");
            dir
        })
    }

    /// The fixed storage key, loaded through the node's public API (a key file of mode 0600).
    pub fn load_key() -> StorageKey {
        static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
        let path = PATH.get_or_init(|| {
            let path = scratch_dir().join("storage.key");
            let _ = std::fs::remove_file(&path);
            vhsm_node::seal::write_private_file(&path, KEY_HEX.as_bytes()).expect("key file");
            path
        });
        StorageKey::load(path).expect("fixed storage key")
    }

    /// The fixed storage key, loaded once.
    pub fn key() -> &'static StorageKey {
        static KEY: OnceLock<StorageKey> = OnceLock::new();
        KEY.get_or_init(load_key)
    }
}
