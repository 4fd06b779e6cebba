//! Sizes every layer agrees on (the client, the coordinator, the PKCS#11 module).

/// The largest plaintext one encryption request takes (larger data is cut into chunks by the caller).
pub const MAX_CIPHER_INPUT: usize = 1024 * 1024;
