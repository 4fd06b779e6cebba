//! Objects that are not keys: certificates and data objects an application keeps on the token.

use serde::{Deserialize, Serialize};

use crate::ObjectId;

/// A stored object that is not a key: a certificate or a data object an application put on the token. Kept on
/// every node (there is no share), versioned so that the newest copy wins when nodes disagree after an outage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object's id.
    pub id: ObjectId,
    /// Incremented by every change; the highest version is the object's state.
    pub version: u64,
    /// Whether the object was destroyed (a tombstone, so that a node that missed the destruction is outvoted).
    pub destroyed: bool,
    /// Its PKCS#11 attributes (type → value), CKA_CLASS included.
    pub attributes: Vec<(u64, Vec<u8>)>,
}
