//! Split-AES encryption and decryption, orchestrated (DiSE; see `vhsm_protocols::split_aes`).
//!
//! The coordinator picks the message input α (encrypt: from the key id, the aad, the plaintext and a random ρ;
//! decrypt: from the blob), asks `t` holders in parallel for their partial evaluations, verifies every proof, and
//! combines the valid partials into the message's AES-256-GCM key. A node whose partial or proof is invalid is
//! named in the log and left out, and another holder is asked; so is a node that does not answer in time. The
//! coordinator sees each message's key, never the DPRF key `k` or any share of it.
//!
//! An encryption also collects the evaluating nodes' receipt partials (checked like the partials) into the blob's
//! encryption receipt; a decryption hands the blob's receipt to the nodes, which check it when the key may no
//! longer encrypt (`vhsm_protocols::split_aes::receipt`).

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
    receipt::{EncryptionReceipt, ReceiptPartial},
    share::SplitAesPublicKeys,
};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, NodeId,
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

/// Derives the message key for `alpha`: t valid partials from the holders, combined. An encryption returns the
/// same nodes' receipt partials too (checked); a decryption sends `receipt` (the blob's) to the nodes and returns
/// no receipt partials.
async fn derive(
    pool: &NodePool,
    key: &KeyInfo,
    public: &SplitAesPublicKeys,
    alpha: [u8; 32],
    purpose: KeyUse,
    receipt: &[u8],
) -> Result<(DerivedKey, Vec<ReceiptPartial>), Error> {
    let t = usize::from(key.threshold);
    let mut valid: BTreeMap<NodeId, PartialEvaluation> = BTreeMap::new();
    let mut receipts: BTreeMap<NodeId, ReceiptPartial> = BTreeMap::new();
    let mut excluded: BTreeSet<NodeId> = BTreeSet::new();
    let mut unreachable = Vec::new();
    let mut culprits = Vec::new();
    let mut refusals: Vec<(NodeId, vhsm_wire::WireError)> = Vec::new();
    loop {
        let missing = t - valid.len();
        let mut candidates: Vec<NodeId> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !valid.contains_key(h) && !excluded.contains(h))
            .collect();
        // Nodes that did not fail lately, and are not known unable to use their share of the key, first.
        let unusable = pool.unusable(key.id, key.epoch);
        candidates.sort_by_key(|n| (unusable.contains(n), pool.recently_failed(*n)));
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
            // Nodes that refused: when every holder that answered refused, their own words are the answer (a
            // key state, a missing encryption receipt: the client's error, not the cluster's).
            if unreachable.is_empty() && culprits.is_empty() {
                if let Some((node, error)) = refusals.first() {
                    return Err(Error::Refused {
                        node: *node,
                        error: error.clone(),
                    });
                }
            }
            for (node, error) in &refusals {
                message.push_str(&format!("; node {node} refused: {}", error.message));
            }
            let nodes = unreachable
                .iter()
                .chain(culprits.iter())
                .chain(refusals.iter().map(|(n, _)| n))
                .copied()
                .collect();
            return Err(if unreachable.is_empty() && refusals.is_empty() {
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
                    receipt: if purpose == KeyUse::Decrypt {
                        receipt.to_vec()
                    } else {
                        Vec::new()
                    },
                },
                EVALUATE_TIMEOUT,
            )
            .await;
        for (node, answer) in answers {
            excluded.insert(node);
            let (partial, receipt_partial) = match (purpose, answer) {
                (KeyUse::Decrypt, Ok(NodeResponse::Partial(partial))) => (partial, None),
                (KeyUse::Encrypt, Ok(NodeResponse::EncryptionPartial { partial, receipt })) => {
                    (partial, Some(receipt))
                }
                (_, Ok(other)) => {
                    tracing::warn!(key = %key.id, node, answer = ?other, "split-AES: node answered an evaluation with something else; left out");
                    culprits.push(node);
                    continue;
                }
                (_, Err(NodeCallError::Unreachable { node, reason })) => {
                    tracing::warn!(key = %key.id, node, %reason, "split-AES: node unreachable; asking another holder");
                    unreachable.push(node);
                    continue;
                }
                (_, Err(NodeCallError::Refused { node, error })) => {
                    tracing::warn!(key = %key.id, node, %error, "split-AES: node refused");
                    if !matches!(
                        error.kind,
                        ErrorKind::Forbidden | ErrorKind::BadRequest | ErrorKind::InvalidData
                    ) {
                        pool.note_unusable(key.id, key.epoch, [node]);
                    }
                    refusals.push((node, error));
                    continue;
                }
            };
            // The sender is the node we asked (the transport authenticated it), never the id it claims.
            if let Err(e) = verify_partial(public, &key.id.0, &alpha, node, &partial) {
                tracing::warn!(key = %key.id, node, error = %e, "split-AES: node sent an invalid partial; left out, asking another holder");
                culprits.push(node);
                continue;
            }
            if let Some(receipt_partial) = receipt_partial {
                let current_share = public.public_share(node).unwrap_or_default();
                if receipt_partial.participant != node
                    || !receipt_partial.verifies(&key.id.0, &alpha, &current_share)
                {
                    tracing::warn!(key = %key.id, node, "split-AES: node sent an invalid encryption receipt; left out, asking another holder");
                    culprits.push(node);
                    continue;
                }
                receipts.insert(node, receipt_partial);
            }
            valid.insert(node, partial);
        }
        if valid.len() >= t {
            // Every partial was verified as it arrived; combine checks them again (2t proof checks per message).
            let derived =
                combine(public, &key.id.0, &alpha, &valid).map_err(|e| Error::Misbehaviour {
                    message: format!("cannot combine the partial evaluations: {e}"),
                    culprits: e.culprits().to_vec(),
                })?;
            let receipt = receipts
                .into_iter()
                .filter(|(node, _)| valid.contains_key(node))
                .map(|(_, r)| r)
                .collect();
            return Ok((derived, receipt));
        }
    }
}

/// The pairwise consistency test of a new (pending) split-AES key: encrypt the test message at its fixed input, then
/// decrypt it with a second, independent derivation (see `vhsm_protocols::pairwise`).
pub async fn pairwise_test(pool: &NodePool, key: &KeyInfo) -> Result<(), Error> {
    let public = public_keys(key)?;
    let message = vhsm_protocols::pairwise::message(&key.id);
    let alpha = vhsm_protocols::pairwise::split_aes_alpha(&key.id);
    let (sealing, receipt) = derive(pool, key, &public, alpha, KeyUse::Encrypt, &[]).await?;
    let receipt = EncryptionReceipt::new(receipt);
    let bytes = blob::seal(
        &sealing, key.id.0, alpha, &receipt, b"", &message, &[0u8; 32], &mut OsRng,
    )
    .map_err(|e| Error::Internal(format!("cannot encrypt: {e}")))?;
    let parsed =
        CiphertextBlob::parse(&bytes).map_err(|e| Error::Internal(format!("blob: {e}")))?;
    // A pending key may not encrypt: the nodes check the test blob's receipt as for any key that may not.
    let (opening, _) = derive(pool, key, &public, alpha, KeyUse::Decrypt, &parsed.receipt).await?;
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
    let (derived, receipt) = derive(pool, key, &public, alpha, KeyUse::Encrypt, &[]).await?;
    let receipt = EncryptionReceipt::new(receipt);
    blob::seal(
        &derived, key.id.0, alpha, &receipt, aad, plaintext, &rho, &mut OsRng,
    )
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
    if parsed.receipt.is_empty() && !key.state.allows(KeyUse::Encrypt) {
        // The nodes would refuse it (see `vhsm_protocols::split_aes::receipt`): say why before asking them.
        return Err(Error::Forbidden(format!(
            "key {} is {}: it decrypts only ciphertexts encrypted while it was active, which carry an encryption receipt; this one was made before receipts (blob version {})",
            key.id, key.state, parsed.version
        )));
    }
    let (derived, _) = derive(
        pool,
        key,
        &public,
        parsed.alpha,
        KeyUse::Decrypt,
        &parsed.receipt,
    )
    .await?;
    blob::open(&derived, &parsed, aad).map_err(|_| {
        Error::InvalidCiphertext("the ciphertext does not decrypt: it was altered, or the associated data differs from encryption".into())
    })
}
