//! `C_GenerateKeyPair` and `C_GenerateKey`: a distributed key generation on the cluster (FROST for Ed25519, DKLs23
//! for ECDSA, which takes several seconds: a blocking call, as PKCS#11 allows; a split-AES key by a DKG on
//! ristretto255 for `CKM_VHSM_SPLIT_AES_KEY_GEN`).
//!
//! Deliberate deviation: a token key pair may be generated from a read-only session (PKCS#11 says
//! `CKR_SESSION_READ_ONLY`), and that session may destroy the keys it generated so. OpenSC's `pkcs11-tool
//! --test-ec` generates its token keys in the read-only session it opens and deletes them at the end; refusing
//! gains nothing: the user must be logged in either way, and changing a key, or destroying any other, still needs
//! a read/write session.

use cryptoki_sys::*;

use crate::attributes::Template;
use crate::mechanisms::{parse_keygen_mechanism, parse_secret_keygen_mechanism};
use crate::objects::{KeyBinding, SessionObject};
use crate::policy::{key_pair_request, secret_key_request};
use crate::state::{destroy_session_keys, with_module};
use crate::CkResult;
use vhsm_core::{Algorithm, KeyInfo};

/// `C_GenerateKeyPair`: returns (public-key handle, private-key handle).
pub fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
    public: &Template,
    private: &Template,
) -> CkResult<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let (bridge, request) = with_module(|m| {
        let user = m.user_logged_in();
        m.session(session)?;
        let request = key_pair_request(parse_keygen_mechanism(mechanism, param)?, public, private)?;
        if !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        Ok((m.bridge()?, request))
    })?;
    tracing::debug!(curve = ?request.curve, token = request.token, "generating a key pair");
    let info = bridge.create_key(
        request.curve.algorithm(),
        request.label.clone(),
        request.stored.clone(),
    )?;
    if info.public_key.len() != request.curve.public_key_len() {
        tracing::error!("the cluster returned a key without a usable public key");
        return Err(CKR_DEVICE_ERROR);
    }
    let handles = register(session, info, request.token, &[false, true], &bridge)?;
    match handles.as_slice() {
        [public_handle, private_handle] => Ok((*public_handle, *private_handle)),
        _ => Err(CKR_GENERAL_ERROR),
    }
}

/// `C_GenerateKey` with `CKM_VHSM_SPLIT_AES_KEY_GEN`: a split-AES key, one secret-key object.
pub fn generate_key(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
    template: &Template,
) -> CkResult<CK_OBJECT_HANDLE> {
    let (bridge, request) = with_module(|m| {
        let user = m.user_logged_in();
        m.session(session)?;
        parse_secret_keygen_mechanism(mechanism, param)?;
        let request = secret_key_request(template)?;
        if !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        Ok((m.bridge()?, request))
    })?;
    tracing::debug!(token = request.token, "generating a split-AES key");
    let info = bridge.create_key(
        Algorithm::SplitAes256,
        request.label.clone(),
        request.stored.clone(),
    )?;
    if !crate::key_objects::presentable(&info) {
        tracing::error!("the cluster returned a key without its public part");
        return Err(CKR_DEVICE_ERROR);
    }
    let handles = register(session, info, request.token, &[true], &bridge)?;
    handles.first().copied().ok_or(CKR_GENERAL_ERROR)
}

/// Makes the objects of a newly generated key: the handles of its objects in the private-key slot (`true`) or the
/// public-key slot (`false`), in the order of `slots`. A token key is cached like a listed one; a session key gets
/// session objects, and is destroyed on the cluster at once if its session closed meanwhile.
fn register(
    session: CK_SESSION_HANDLE,
    info: KeyInfo,
    token: bool,
    slots: &[bool],
    bridge: &crate::client::Bridge,
) -> CkResult<Vec<CK_OBJECT_HANDLE>> {
    let key_id = info.id;
    let handles = with_module(|m| {
        if token {
            if let Ok(s) = m.session(session) {
                if !s.rw {
                    s.generated_read_only.push(key_id);
                }
            }
            m.objects.put_key(info);
            return Ok(Some(
                slots
                    .iter()
                    .map(|private| m.objects.key_handle(key_id, *private))
                    .collect(),
            ));
        }
        if m.session(session).is_err() {
            // The session closed while the key was being made: nothing may keep the session key.
            return Ok(None);
        }
        let mut handles = Vec::with_capacity(slots.len());
        for is_private in slots {
            let attributes = crate::key_objects::key_object_attributes(&info, *is_private)
                .ok_or(CKR_DEVICE_ERROR)?;
            handles.push(m.objects.add_session_object(SessionObject {
                session,
                attributes,
                key: Some(KeyBinding {
                    key_id,
                    private: *is_private,
                    ephemeral: true,
                }),
            }));
        }
        m.objects.put_key(info);
        Ok(Some(handles))
    })?;
    match handles {
        Some(h) => Ok(h),
        None => {
            destroy_session_keys(bridge, vec![key_id]);
            Err(CKR_SESSION_HANDLE_INVALID)
        }
    }
}
