//! `C_GenerateKeyPair`: a distributed key generation on the cluster (FROST for Ed25519, DKLs23 for ECDSA, which
//! takes several seconds: a blocking call, as PKCS#11 allows).
//!
//! Deliberate deviation: a token key pair may be generated from a read-only session (PKCS#11 says
//! `CKR_SESSION_READ_ONLY`), and that session may destroy the keys it generated so. OpenSC's `pkcs11-tool
//! --test-ec` generates its token keys in the read-only session it opens and deletes them at the end; refusing
//! gains nothing: the user must be logged in either way, and changing a key, or destroying any other, still needs
//! a read/write session.

use cryptoki_sys::*;

use crate::attributes::Template;
use crate::mechanisms::parse_keygen_mechanism;
use crate::objects::{KeyBinding, SessionObject};
use crate::policy::key_pair_request;
use crate::state::{destroy_session_keys, with_module};
use crate::CkResult;

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
    let key_id = info.id;
    let handles = with_module(|m| {
        if request.token {
            if let Ok(s) = m.session(session) {
                if !s.rw {
                    s.generated_read_only.push(key_id);
                }
            }
            m.objects.put_key(info);
            return Ok(Some((
                m.objects.key_handle(key_id, false),
                m.objects.key_handle(key_id, true),
            )));
        }
        if m.session(session).is_err() {
            // The session closed while the key was being made: nothing may keep the session key.
            return Ok(None);
        }
        let mut handles = [0; 2];
        for (slot, is_private) in handles.iter_mut().zip([false, true]) {
            let attributes = crate::key_objects::key_object_attributes(&info, is_private)
                .ok_or(CKR_DEVICE_ERROR)?;
            *slot = m.objects.add_session_object(SessionObject {
                session,
                attributes,
                key: Some(KeyBinding {
                    key_id,
                    private: is_private,
                    ephemeral: true,
                }),
            });
        }
        m.objects.put_key(info);
        let [public_handle, private_handle] = handles;
        Ok(Some((public_handle, private_handle)))
    })?;
    match handles {
        Some(h) => Ok(h),
        None => {
            destroy_session_keys(&bridge, vec![key_id]);
            Err(CKR_SESSION_HANDLE_INVALID)
        }
    }
}
