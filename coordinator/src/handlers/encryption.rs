//! Split-AES encryption and decryption.

use vhsm_core::{KeyId, KeyUse, SecretBytes};
use vhsm_wire::client_api::ClientResponse;

use vhsm_core::limits::MAX_CIPHER_INPUT;

use crate::{
    encryption,
    server::{ClientSession, Coordinator},
};
use crate::{error::Error, nodes::NodePool};

impl Coordinator {
    /// `Encrypt`: split-AES encryption of at most `MAX_CIPHER_INPUT` bytes bound to `aad`, with a key whose state
    /// allows encrypting. User.
    pub(crate) async fn encrypt(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
        plaintext: SecretBytes,
        aad: Vec<u8>,
    ) -> Result<ClientResponse, Error> {
        session.require_user()?;
        if plaintext.len() > MAX_CIPHER_INPUT || aad.len() > MAX_CIPHER_INPUT {
            return Err(Error::InvalidData(format!(
                "at most {MAX_CIPHER_INPUT} bytes per request: cut larger data into chunks"
            )));
        }
        let key = self.key(nodes, key_id).await?;
        Error::unless_permitted(&key, KeyUse::Encrypt)?;
        let blob = encryption::encrypt(nodes, &key, plaintext.expose(), &aad).await?;
        Ok(ClientResponse::Ciphertext(blob))
    }

    /// `Decrypt`: opens a blob with the key it names (state must allow decrypting) and `aad`; a blob that does
    /// not open is `InvalidCiphertext`, and no plaintext is returned. User.
    pub(crate) async fn decrypt(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        blob: Vec<u8>,
        aad: Vec<u8>,
    ) -> Result<ClientResponse, Error> {
        session.require_user()?;
        let key = self.key(nodes, encryption::blob_key_id(&blob)?).await?;
        Error::unless_permitted(&key, KeyUse::Decrypt)?;
        let plaintext = encryption::decrypt(nodes, &key, &blob, &aad).await?;
        Ok(ClientResponse::Plaintext(SecretBytes::new(
            plaintext.to_vec(),
        )))
    }
}
