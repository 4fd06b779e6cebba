//! Canonical decoding of the maps that protocol messages carry.
//!
//! Postcard encodes a map as its length followed by its entries, and serde's own `BTreeMap` decoder inserts
//! the entries one by one: entries in any order decode, and a repeated key silently replaces the earlier
//! entry. So different byte strings decode to the same message, and re-encoding one does not give back the
//! bytes received (a finding of our fuzzing). That makes messages malleable, and a repeated key can hide
//! what a sender really sent: an echo listing a sender twice decoded as if it named it once.
//!
//! Our encodings write a `BTreeMap` in ascending key order, so the canonical encoding of a map is the one
//! whose keys are **strictly increasing**. [`map`] decodes exactly that and refuses anything else with a
//! decode error; use it on every map field of a decoded message with
//! `#[serde(deserialize_with = "crate::canonical::map")]` (encoding is unchanged), or decode through
//! [`StrictMap`] where a whole payload is a map.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Decodes a map whose keys are strictly increasing in the encoding; an entry whose key is not greater than
/// the one before it (out of order, or repeated) is a decode error. For
/// `#[serde(deserialize_with = "crate::canonical::map")]`.
pub(crate) fn map<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    deserializer.deserialize_map(StrictlyIncreasing(PhantomData))
}

/// The visitor of [`map`].
struct StrictlyIncreasing<K, V>(PhantomData<fn() -> (K, V)>);

impl<'de, K, V> Visitor<'de> for StrictlyIncreasing<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with strictly increasing keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut decoded = BTreeMap::new();
        while let Some((key, value)) = access.next_entry::<K, V>()? {
            if decoded
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(A::Error::custom(
                    "map keys are not strictly increasing (out of order or repeated)",
                ));
            }
            decoded.insert(key, value);
        }
        Ok(decoded)
    }
}

/// A map decoded canonically (with [`map`]), for payloads that are a map on their own. Its encoding is the
/// map's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StrictMap<K, V>(pub(crate) BTreeMap<K, V>);

impl<'de, K, V> Deserialize<'de> for StrictMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        map(deserializer).map(StrictMap)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::party::ParticipantId;

    /// The postcard encoding of a map whose entries come in exactly this order (a map is encoded like a
    /// sequence of (key, value) pairs).
    pub(crate) fn map_bytes(entries: &[(ParticipantId, [u8; 32])]) -> Vec<u8> {
        postcard::to_allocvec(entries).unwrap()
    }

    /// Checks the decoder of a message that carries a map: `with(entries)` is the encoding of the message with
    /// its map's entries encoded in exactly this order. The canonical order decodes and re-encodes byte for
    /// byte; keys out of order, or a repeated key, are a decode error.
    pub(crate) fn check_message_map<T>(
        decode: impl Fn(&[u8]) -> Result<T, crate::ProtocolError>,
        encode: impl Fn(&T) -> Result<Vec<u8>, crate::ProtocolError>,
        with: impl Fn(&[(ParticipantId, [u8; 32])]) -> Vec<u8>,
    ) {
        let canonical = with(&[(1, [1; 32]), (2, [2; 32]), (300, [3; 32])]);
        assert_eq!(encode(&decode(&canonical).unwrap()).unwrap(), canonical);
        for bad in [
            with(&[(2, [2; 32]), (1, [1; 32]), (300, [3; 32])]),
            with(&[(1, [1; 32]), (300, [3; 32]), (2, [2; 32])]),
            with(&[(1, [1; 32]), (1, [1; 32]), (300, [3; 32])]),
            with(&[(1, [1; 32]), (2, [2; 32]), (2, [9; 32])]),
        ] {
            assert!(matches!(
                decode(&bad),
                Err(crate::ProtocolError::Encoding(_))
            ));
        }
    }

    fn decode(bytes: &[u8]) -> Option<BTreeMap<ParticipantId, [u8; 32]>> {
        crate::ecdsa::decode::<StrictMap<ParticipantId, [u8; 32]>>(bytes).map(|m| m.0)
    }

    #[test]
    fn the_encoding_of_a_map_is_that_of_its_entries_in_order() {
        let map: BTreeMap<ParticipantId, [u8; 32]> = [(1, [1; 32]), (300, [3; 32])].into();
        assert_eq!(
            postcard::to_allocvec(&map).unwrap(),
            map_bytes(&[(1, [1; 32]), (300, [3; 32])])
        );
    }

    #[test]
    fn a_canonical_map_round_trips_byte_for_byte() {
        for entries in [
            vec![],
            vec![(7, [7; 32])],
            vec![(1, [1; 32]), (2, [2; 32]), (300, [3; 32])],
        ] {
            let bytes = map_bytes(&entries);
            let decoded = decode(&bytes).unwrap();
            assert_eq!(decoded.len(), entries.len());
            assert_eq!(postcard::to_allocvec(&decoded).unwrap(), bytes);
        }
    }

    #[test]
    fn keys_out_of_order_are_refused() {
        let bytes = map_bytes(&[(2, [2; 32]), (1, [1; 32])]);
        // serde's own map decoder takes them (and re-encodes them otherwise); ours does not.
        let lenient: BTreeMap<ParticipantId, [u8; 32]> = postcard::from_bytes(&bytes).unwrap();
        assert_ne!(postcard::to_allocvec(&lenient).unwrap(), bytes);
        assert_eq!(decode(&bytes), None);
        assert_eq!(
            decode(&map_bytes(&[(1, [1; 32]), (3, [3; 32]), (2, [2; 32])])),
            None
        );
    }

    #[test]
    fn a_repeated_key_is_refused() {
        let bytes = map_bytes(&[(1, [1; 32]), (1, [9; 32])]);
        let lenient: BTreeMap<ParticipantId, [u8; 32]> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(lenient.len(), 1);
        assert_eq!(decode(&bytes), None);
        assert_eq!(
            decode(&map_bytes(&[(1, [1; 32]), (2, [2; 32]), (2, [2; 32])])),
            None
        );
    }
}
