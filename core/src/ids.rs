//! Who and what: node, key and object ids.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A node's id in the cluster (1, 2, …), as its certificate names it (`node-N.vhsm`).
pub type NodeId = u16;

/// A key's id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// A fresh random key id.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| format!("'{s}' is not a key id (32 hex digits)"))?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| format!("'{s}' is not a key id (32 hex digits)"))?;
        Ok(KeyId(bytes))
    }
}

/// An object's id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; 16]);

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_id_text_round_trip() {
        let id = KeyId([0xab; 16]);
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert!("abc".parse::<KeyId>().is_err());
        assert!("zz".repeat(16).parse::<KeyId>().is_err());
    }
}
