//! Split-AES encryption and decryption.

use vhsm_core::{KeyId, KeyUse, SecretBytes};
use vhsm_wire::{client_api::ClientResponse, ErrorKind, WireError};

use vhsm_core::limits::MAX_CIPHER_INPUT;

use crate::{
    encryption,
    server::{permitted, ClientSession, Coordinator},
};

impl Coordinator {
    /// `Encrypt`.
    pub(crate) async fn encrypt(
        &self,
        session: &ClientSession,
        key_id: KeyId,
        plaintext: SecretBytes,
        aad: Vec<u8>,
    ) -> Result<ClientResponse, WireError> {
        session.require_user()?;
        if plaintext.len() > MAX_CIPHER_INPUT || aad.len() > MAX_CIPHER_INPUT {
            return Err(WireError::new(
                ErrorKind::BadRequest,
                format!(
                    "at most {MAX_CIPHER_INPUT} bytes per request: cut larger data into chunks"
                ),
            ));
        }
        let key = self.key(key_id).await?;
        permitted(&key, KeyUse::Encrypt)?;
        let blob = encryption::encrypt(&self.pool, &key, plaintext.expose(), &aad).await?;
        Ok(ClientResponse::Ciphertext(blob))
    }

    /// `Decrypt`.
    pub(crate) async fn decrypt(
        &self,
        session: &ClientSession,
        blob: Vec<u8>,
        aad: Vec<u8>,
    ) -> Result<ClientResponse, WireError> {
        session.require_user()?;
        let key = self.key(encryption::blob_key_id(&blob)?).await?;
        permitted(&key, KeyUse::Decrypt)?;
        let plaintext = encryption::decrypt(&self.pool, &key, &blob, &aad).await?;
        Ok(ClientResponse::Plaintext(SecretBytes::new(
            plaintext.to_vec(),
        )))
    }
}
