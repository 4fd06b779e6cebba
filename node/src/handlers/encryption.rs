//! Split-AES: this node's partial evaluation of a key's DPRF, and its receipt of an encryption.

use rand_core::OsRng;
use vhsm_core::{KeyId, KeyUse};
use vhsm_protocols::split_aes::{self, receipt::EncryptionReceipt};
use vhsm_wire::node_api::NodeResponse;

use crate::{error::ServiceError, node::Node, share::KeyShare};

impl Node {
    /// `Evaluate`: this node's split-AES partial evaluation at `alpha`, with its DLEQ proof.
    ///
    /// An encryption (the key's state must allow it) also returns this node's receipt partial for the blob. A
    /// decryption with a key that may no longer encrypt (deactivated, compromised) is evaluated only if the blob's
    /// `receipt` shows that `alpha` was evaluated for an encryption while the key could encrypt — otherwise it could be
    /// an encryption called a decryption (`vhsm_protocols::split_aes::receipt` has the argument). The check uses
    /// the group public key of this node's own share, never anything the coordinator describes.
    pub(crate) async fn evaluate(
        &self,
        key_id: KeyId,
        epoch: u64,
        purpose: KeyUse,
        alpha: [u8; 32],
        receipt: Vec<u8>,
    ) -> Result<NodeResponse, ServiceError> {
        if !matches!(purpose, KeyUse::Encrypt | KeyUse::Decrypt) {
            return Err(ServiceError::BadRequest(
                "an evaluation encrypts or decrypts".into(),
            ));
        }
        let pairwise_test = alpha == vhsm_protocols::pairwise::split_aes_alpha(&key_id);
        let key = self.key_at(key_id, epoch, purpose, pairwise_test).await?;
        let KeyShare::SplitAes(share) = &key.share else {
            return Err(ServiceError::WrongScheme {
                key_id,
                scheme: "split-AES",
            });
        };
        let state = key.info.state;
        // (A pending key's pairwise test decrypts what it encrypted a moment ago, with its receipt like any other.)
        if purpose == KeyUse::Decrypt && !state.allows(KeyUse::Encrypt) {
            let refuse = |problem: String| ServiceError::NoEncryptionReceipt {
                key_id,
                state,
                problem,
                node: self.id,
            };
            if receipt.is_empty() {
                return Err(refuse(
                    "is missing (the blob was made before receipts, or the request is not a decryption)".into(),
                ));
            }
            EncryptionReceipt::from_bytes(&receipt)
                .and_then(|r| r.verify(&share.group_public_key(), &key_id.0, &alpha))
                .map_err(|e| refuse(format!("does not verify ({e})")))?;
        }
        #[allow(unused_mut)]
        let mut partial = split_aes::partial::evaluate(share, &key_id.0, &alpha, &mut OsRng);
        #[cfg(feature = "fault-injection")]
        if self.faults.wrong_partials {
            // Answer another message's partial: a valid-looking point and proof, for the wrong input.
            let mut other = alpha;
            other[0] ^= 1;
            partial = split_aes::partial::evaluate(share, &key_id.0, &other, &mut OsRng);
            tracing::warn!("fault injection: sent a wrong partial evaluation");
        }
        if purpose == KeyUse::Encrypt {
            let receipt =
                split_aes::receipt::evaluate_receipt(share, &key_id.0, &alpha, &mut OsRng);
            return Ok(NodeResponse::EncryptionPartial { partial, receipt });
        }
        Ok(NodeResponse::Partial(partial))
    }
}
