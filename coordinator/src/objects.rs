//! Certificates and data objects: kept on every node (they hold no share), versioned so that the newest copy
//! wins when nodes disagree. A write needs `threshold` nodes to confirm, the same availability as signing.

use std::{collections::BTreeMap, time::Duration};

use rand_core::{OsRng, RngCore};
use vhsm_core::{ObjectId, StoredObject};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::error::Error;
use crate::nodes::NodePool;

const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest object accepted (a certificate chain fits many times over).
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;
/// PKCS#11 CKA_PRIVATE: objects with it set are listed only to logged-in connections.
pub const CKA_PRIVATE: u64 = 0x2;

/// Whether an object's attributes mark it private (CKA_PRIVATE true).
pub fn is_private(object: &StoredObject) -> bool {
    object
        .attributes
        .iter()
        .any(|(t, v)| *t == CKA_PRIVATE && v.iter().any(|b| *b != 0))
}

/// The objects as the nodes hold them: for each id, the newest version any reachable node has.
async fn merged(pool: &NodePool) -> Result<BTreeMap<ObjectId, StoredObject>, Error> {
    let answers = pool
        .call_each(&pool.ids(), |_| NodeRequest::ListObjects, TIMEOUT)
        .await;
    let mut newest: BTreeMap<ObjectId, StoredObject> = BTreeMap::new();
    let mut answered = 0;
    for (_, answer) in answers {
        if let Ok(NodeResponse::Objects(objects)) = answer {
            answered += 1;
            for object in objects {
                match newest.get(&object.id) {
                    Some(known) if known.version >= object.version => {}
                    _ => {
                        newest.insert(object.id, object);
                    }
                }
            }
        }
    }
    if answered == 0 {
        return Err(Error::Unavailable {
            message: "no node answered: cannot list objects".into(),
            nodes: pool.ids(),
        });
    }
    Ok(newest)
}

/// Every live object.
pub async fn list(pool: &NodePool) -> Result<Vec<StoredObject>, Error> {
    Ok(merged(pool)
        .await?
        .into_values()
        .filter(|o| !o.destroyed)
        .collect())
}

async fn put(pool: &NodePool, threshold: u16, object: &StoredObject) -> Result<(), Error> {
    let answers = pool
        .call_each(
            &pool.ids(),
            |_| NodeRequest::PutObject {
                object: object.clone(),
            },
            TIMEOUT,
        )
        .await;
    let failed: Vec<NodeId> = answers
        .iter()
        .filter(|(_, a)| a.is_err())
        .map(|(n, _)| *n)
        .collect();
    let confirmed = answers.len() - failed.len();
    if confirmed < usize::from(threshold) {
        return Err(Error::Unavailable {
            message: format!("object not stored: {confirmed} node(s) confirmed, {threshold} needed; failed: {failed:?}"),
            nodes: failed,
        });
    }
    if !failed.is_empty() {
        tracing::warn!(object = %object.id, ?failed, "object stored, but these nodes missed it (outvoted later)");
    }
    Ok(())
}

fn check_size(attributes: &[(u64, Vec<u8>)]) -> Result<(), Error> {
    let size: usize = attributes.iter().map(|(_, v)| v.len() + 8).sum();
    if size > MAX_OBJECT_BYTES {
        return Err(Error::BadRequest(format!(
            "object of {size} bytes is larger than the {MAX_OBJECT_BYTES}-byte limit"
        )));
    }
    Ok(())
}

/// Stores a new object.
pub async fn create(
    pool: &NodePool,
    threshold: u16,
    attributes: Vec<(u64, Vec<u8>)>,
) -> Result<StoredObject, Error> {
    check_size(&attributes)?;
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let object = StoredObject {
        id: ObjectId(id),
        version: 1,
        destroyed: false,
        attributes,
    };
    put(pool, threshold, &object).await?;
    Ok(object)
}

async fn current(pool: &NodePool, id: ObjectId) -> Result<StoredObject, Error> {
    merged(pool)
        .await?
        .remove(&id)
        .filter(|o| !o.destroyed)
        .ok_or_else(|| Error::NotFound(format!("no object {id}")))
}

/// Replaces an object's attributes.
pub async fn update(
    pool: &NodePool,
    threshold: u16,
    id: ObjectId,
    attributes: Vec<(u64, Vec<u8>)>,
) -> Result<StoredObject, Error> {
    check_size(&attributes)?;
    let mut object = current(pool, id).await?;
    object.version += 1;
    object.attributes = attributes;
    put(pool, threshold, &object).await?;
    Ok(object)
}

/// Destroys an object (a tombstone that outvotes older copies).
pub async fn destroy(pool: &NodePool, threshold: u16, id: ObjectId) -> Result<(), Error> {
    let mut object = current(pool, id).await?;
    object.version += 1;
    object.destroyed = true;
    object.attributes.clear();
    put(pool, threshold, &object).await
}
