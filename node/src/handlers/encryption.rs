//! Split-AES: this node's partial evaluation of a key's DPRF.

use rand_core::OsRng;
use vhsm_core::{KeyId, KeyUse};
use vhsm_protocols::split_aes;
use vhsm_wire::node_api::NodeResponse;

use crate::{error::ServiceError, node::Node, share::KeyShare};

impl Node {
    /// `Evaluate`: this node's split-AES partial evaluation at `alpha`, with its DLEQ proof.
    pub(crate) async fn evaluate(
        &self,
        key_id: KeyId,
        epoch: u64,
        purpose: KeyUse,
        alpha: [u8; 32],
    ) -> Result<NodeResponse, ServiceError> {
        if !matches!(purpose, KeyUse::Encrypt | KeyUse::Decrypt) {
            return Err(ServiceError::BadRequest(
                "an evaluation encrypts or decrypts".into(),
            ));
        }
        let key = self
            .key_at(
                key_id,
                epoch,
                purpose,
                alpha == vhsm_protocols::pairwise::split_aes_alpha(&key_id),
            )
            .await?;
        let KeyShare::SplitAes(share) = &key.share else {
            return Err(ServiceError::WrongScheme {
                key_id,
                scheme: "split-AES",
            });
        };
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
        Ok(NodeResponse::Partial(partial))
    }
}
