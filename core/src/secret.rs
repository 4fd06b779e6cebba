//! [`SecretBytes`]: a byte string that must not leak.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes: zeroized on drop, `Debug` prints `<redacted>`, equality is constant-time (in the contents;
/// the length is not secret).
///
/// It serializes as a byte string, because secret protocol messages (e.g. a DKG round-2 share) travel inside
/// it — over a confidential channel only.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `v` (without copying it).
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }

    /// The secret contents. Keep the borrow short and do not copy it into unprotected memory.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretBytes {}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(SecretBytesVisitor)
    }
}

/// Accepts a byte string (binary formats) or a sequence of bytes (human-readable formats such as JSON).
struct SecretBytesVisitor;

impl<'de> serde::de::Visitor<'de> for SecretBytesVisitor {
    type Value = SecretBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(SecretBytes(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(SecretBytes(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Pre-size (bounded) so that growing the vector does not leave copies of the secret behind.
        let mut out = SecretBytes(Vec::with_capacity(
            seq.size_hint().unwrap_or(64).min(1 << 16),
        ));
        while let Some(b) = seq.next_element::<u8>()? {
            if out.0.len() == out.0.capacity() {
                let mut bigger = Vec::with_capacity(out.0.capacity().saturating_mul(2).max(64));
                bigger.extend_from_slice(&out.0);
                out = SecretBytes(bigger); // the old buffer is zeroized when dropped here
            }
            out.0.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redacted_and_constant_time_eq() {
        let a = SecretBytes::new(vec![1, 2, 3]);
        assert_eq!(format!("{a:?}"), "<redacted>");
        assert_eq!(a, SecretBytes::new(vec![1, 2, 3]));
        assert_ne!(a, SecretBytes::new(vec![1, 2, 4]));
        assert_ne!(a, SecretBytes::new(vec![1, 2]));
        assert_eq!(a.len(), 3);
        assert!(!a.is_empty());
    }

    #[test]
    fn serde_round_trips() {
        let a = SecretBytes::new((0..=255).collect());
        let p = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<SecretBytes>(&p).unwrap(), a);
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<SecretBytes>(&j).unwrap(), a);
    }

    #[test]
    fn zeroize_clears() {
        let mut a = SecretBytes::new(vec![9; 16]);
        a.zeroize();
        assert!(a.is_empty());
    }
}
