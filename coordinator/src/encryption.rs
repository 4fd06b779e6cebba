//! Split-AES encryption and decryption, orchestrated (DiSE; see `vhsm_protocols::split_aes`).
//!
//! The coordinator picks the message input α (encrypt: from the key id, the aad, the plaintext and a random ρ;
//! decrypt: from the blob), asks `t` holders in parallel for their partial evaluations, verifies every proof, and
//! combines the valid partials into the message's AES-256-GCM key. A node whose partial or proof is invalid is
//! named in the log and left out, and another holder is asked; so is a node that does not answer in time. The
//! coordinator sees each message's key, never the DPRF key `k` or any share of it.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rand_core::{OsRng, RngCore};
use vhsm_core::{Algorithm, KeyInfo, KeyUse};
use vhsm_protocols::split_aes::{
    blob::{self, CiphertextBlob},
    combine::{combine, message_input, verify_partial, DerivedKey},
    partial::PartialEvaluation,
    share::SplitAesPublicKeys,
};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::nodes::{NodeCallError, NodePool};

/// How long a node may take to answer an evaluation.
const EVALUATE_TIMEOUT: Duration = Duration::from_secs(3);

fn public_keys(key: &KeyInfo) -> Result<SplitAesPublicKeys, Error> {
    if key.algorithm != Algorithm::SplitAes256 {
        return Err(Error::BadRequest(format!(
            "{} keys do not encrypt; use a split-aes-256 key",
            key.algorithm
        )));
    }
    SplitAesPublicKeys::from_bytes(&key.public_package)
        .map_err(|e| Error::Internal(format!("key {} has no usable public keys: {e}", key.id)))
}

/// Derives the message key for `alpha`: t valid partials from the holders, combined.
async fn derive(
    pool: &NodePool,
    key: &KeyInfo,
    public: &SplitAesPublicKeys,
    alpha: [u8; 32],
    purpose: KeyUse,
) -> Result<DerivedKey, Error> {
    let t = usize::from(key.threshold);
    let mut valid: BTreeMap<NodeId, PartialEvaluation> = BTreeMap::new();
    let mut excluded: BTreeSet<NodeId> = BTreeSet::new();
    let mut unreachable = Vec::new();
    let mut culprits = Vec::new();
    loop {
        let missing = t - valid.len();
        let mut candidates: Vec<NodeId> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !valid.contains_key(h) && !excluded.contains(h))
            .collect();
        // Nodes that did not fail lately first.
        candidates.sort_by_key(|n| pool.recently_failed(*n));
        if candidates.len() < missing {
            let mut message = format!(
                "cannot use key {}: it needs {t} of its {} holders",
                key.id,
                key.holders.len()
            );
            if !unreachable.is_empty() {
                message.push_str(&format!("; unreachable: {unreachable:?}"));
            }
            if !culprits.is_empty() {
                message.push_str(&format!("; sent invalid partials: {culprits:?}"));
            }
            let nodes = unreachable.iter().chain(culprits.iter()).copied().collect();
            return Err(if unreachable.is_empty() {
                Error::Misbehaviour {
                    message,
                    culprits: nodes,
                }
            } else {
                Error::Unavailable { message, nodes }
            });
        }
        let asked: Vec<NodeId> = candidates.into_iter().take(missing).collect();
        let answers = pool
            .call_each(
                &asked,
                |_| NodeRequest::Evaluate {
                    key_id: key.id,
                    epoch: key.epoch,
                    purpose,
                    alpha,
                },
                EVALUATE_TIMEOUT,
            )
            .await;
        for (node, answer) in answers {
            excluded.insert(node);
            match answer {
                Ok(NodeResponse::Partial(partial)) => {
                    // The sender is the node we asked (the transport authenticated it), never the id it claims.
                    match verify_partial(public, &key.id.0, &alpha, node, &partial) {
                        Ok(()) => {
                            valid.insert(node, partial);
                        }
                        Err(e) => {
                            tracing::warn!(key = %key.id, node, error = %e, "split-AES: node sent an invalid partial; left out, asking another holder");
                            culprits.push(node);
                        }
                    }
                }
                Ok(_) => culprits.push(node),
                Err(NodeCallError::Unreachable { node, reason }) => {
                    tracing::warn!(key = %key.id, node, %reason, "split-AES: node unreachable; asking another holder");
                    unreachable.push(node);
                }
                Err(NodeCallError::Refused { node, error }) => {
                    tracing::warn!(key = %key.id, node, %error, "split-AES: node refused");
                    unreachable.push(node);
                }
            }
        }
        if valid.len() >= t {
            // Every partial was verified as it arrived; combine checks them again (2t proof checks per message).
            return combine(public, &key.id.0, &alpha, &valid).map_err(|e| Error::Misbehaviour {
                message: format!("cannot combine the partial evaluations: {e}"),
                culprits: e.culprits().to_vec(),
            });
        }
    }
}

/// The pairwise consistency test of a new (pending) split-AES key: encrypt the test message at its fixed input, then
/// decrypt it with a second, independent derivation (see `vhsm_protocols::pairwise`).
pub async fn pairwise_test(pool: &NodePool, key: &KeyInfo) -> Result<(), Error> {
    let public = public_keys(key)?;
    let message = vhsm_protocols::pairwise::message(&key.id);
    let alpha = vhsm_protocols::pairwise::split_aes_alpha(&key.id);
    let sealing = derive(pool, key, &public, alpha, KeyUse::Encrypt).await?;
    let bytes = blob::seal(
        &sealing, key.id.0, alpha, b"", &message, &[0u8; 32], &mut OsRng,
    )
    .map_err(|e| Error::Internal(format!("cannot encrypt: {e}")))?;
    let parsed =
        CiphertextBlob::parse(&bytes).map_err(|e| Error::Internal(format!("blob: {e}")))?;
    let opening = derive(pool, key, &public, alpha, KeyUse::Decrypt).await?;
    match blob::open(&opening, &parsed, b"") {
        Ok(plain) if plain.as_slice() == message.as_slice() => Ok(()),
        _ => Err(Error::Misbehaviour {
            message: "the test message does not decrypt to itself".into(),
            // One of the holders, but which cannot be told from the result.
            culprits: Vec::new(),
        }),
    }
}

/// Encrypts `plaintext` bound to `aad`; returns the blob.
pub async fn encrypt(
    pool: &NodePool,
    key: &KeyInfo,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, Error> {
    let public = public_keys(key)?;
    let mut rho = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *rho);
    let alpha = message_input(&key.id.0, aad, plaintext, &rho);
    let derived = derive(pool, key, &public, alpha, KeyUse::Encrypt).await?;
    blob::seal(&derived, key.id.0, alpha, aad, plaintext, &rho, &mut OsRng)
        .map_err(|e| Error::InvalidData(format!("cannot encrypt: {e}")))
}

/// The key id a blob names (to find the key before decrypting).
pub fn blob_key_id(bytes: &[u8]) -> Result<vhsm_core::KeyId, Error> {
    let parsed = CiphertextBlob::parse(bytes)
        .map_err(|e| Error::InvalidCiphertext(format!("not a vHSM ciphertext: {e}")))?;
    Ok(vhsm_core::KeyId(parsed.key_id))
}

/// Decrypts a blob with `aad`. A tampered blob, another aad or another key is an error; no plaintext then.
pub async fn decrypt(
    pool: &NodePool,
    key: &KeyInfo,
    bytes: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let public = public_keys(key)?;
    let parsed = CiphertextBlob::parse(bytes)
        .map_err(|e| Error::InvalidCiphertext(format!("not a vHSM ciphertext: {e}")))?;
    let derived = derive(pool, key, &public, parsed.alpha, KeyUse::Decrypt).await?;
    blob::open(&derived, &parsed, aad).map_err(|_| {
        Error::InvalidCiphertext("the ciphertext does not decrypt: it was altered, or the associated data differs from encryption".into())
    })
}
