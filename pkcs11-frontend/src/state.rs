//! The module's global state: whether it is initialised (and in which process), the bridge to the coordinator,
//! the sessions and the object handles. One mutex guards it; it is held only briefly and never across a request
//! to the cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki_sys::*;
use vhsm_core::{KeyId, PinUser};

use crate::client::Bridge;
use crate::objects::ObjectTable;
use crate::session::Session;
use crate::CkResult;

/// Everything the module holds between `C_Initialize` and `C_Finalize`.
#[derive(Debug)]
pub struct Module {
    /// The process that initialised the module (a different pid means we are a forked child).
    pid: u32,
    /// The link to the coordinator; `None` if the configuration could not be loaded.
    bridge: Option<Arc<Bridge>>,
    /// Why there is no bridge.
    pub config_problem: Option<String>,
    /// Open sessions.
    pub sessions: HashMap<CK_SESSION_HANDLE, Session>,
    last_session: CK_SESSION_HANDLE,
    /// Object handles and the cache of token objects.
    pub objects: ObjectTable,
}

static STATE: Mutex<Option<Module>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Module>> {
    // A panic is caught at the FFI edge; the state it may have left is still usable.
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Abandons the state inherited from the parent across `fork()`: its runtime threads do not exist here, so it is
/// leaked, never dropped. The kept PIN is zeroized first.
fn abandon_if_forked(slot: &mut Option<Module>) {
    if slot.as_ref().is_some_and(|m| m.pid != std::process::id()) {
        if let Some(inherited) = slot.take() {
            if let Some(bridge) = &inherited.bridge {
                bridge.zeroize_after_fork();
            }
            std::mem::forget(inherited);
        }
    }
}

/// How `C_Initialize` was asked to behave.
#[derive(Clone, Copy, Debug, Default)]
pub struct InitOptions {
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS`.
    pub no_threads: bool,
}

/// `C_Initialize`.
pub fn initialize(options: InitOptions) -> CkResult<()> {
    let mut slot = lock();
    abandon_if_forked(&mut slot);
    if slot.is_some() {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    crate::config::init_logging();
    let (bridge, config_problem) = match crate::config::load() {
        Ok(config) => match Bridge::new(config, !options.no_threads) {
            Ok(bridge) => (Some(Arc::new(bridge)), None),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the module's runtime");
                return Err(CKR_GENERAL_ERROR);
            }
        },
        Err(problem) => {
            tracing::warn!(%problem, "no usable configuration: the slot has no token");
            (None, Some(problem))
        }
    };
    *slot = Some(Module {
        pid: std::process::id(),
        bridge,
        config_problem,
        sessions: HashMap::new(),
        last_session: 0,
        objects: ObjectTable::new(),
    });
    tracing::debug!(threads = !options.no_threads, "initialised");
    Ok(())
}

/// `C_Finalize`: closes every session (destroying session key pairs on the cluster) and stops the runtime.
pub fn finalize() -> CkResult<()> {
    let module = {
        let mut slot = lock();
        abandon_if_forked(&mut slot);
        slot.take().ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?
    };
    let mut module = module;
    let ephemeral = module.objects.remove_session_objects(None);
    if let Some(bridge) = module.bridge.take() {
        destroy_session_keys(&bridge, ephemeral);
    }
    tracing::debug!("finalised");
    Ok(())
}

/// Destroys session key pairs on the cluster (best effort: a failure is logged).
pub fn destroy_session_keys(bridge: &Bridge, keys: Vec<KeyId>) {
    for key_id in keys {
        if let Err(rv) = bridge.destroy_key(key_id) {
            tracing::warn!(%key_id, rv, "could not destroy a session key on the cluster");
        }
    }
}

/// Runs `f` on the module's state; `CKR_CRYPTOKI_NOT_INITIALIZED` if there is none (or it belongs to the parent
/// of a forked process).
pub fn with_module<T>(f: impl FnOnce(&mut Module) -> CkResult<T>) -> CkResult<T> {
    let mut slot = lock();
    abandon_if_forked(&mut slot);
    match slot.as_mut() {
        Some(module) => f(module),
        None => Err(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

/// `CKR_CRYPTOKI_NOT_INITIALIZED` unless the module is initialised.
pub fn ensure_initialized() -> CkResult<()> {
    with_module(|_| Ok(()))
}

impl Module {
    /// The bridge, or `CKR_TOKEN_NOT_PRESENT` if the module has no configuration.
    pub fn bridge(&self) -> CkResult<Arc<Bridge>> {
        self.bridge.clone().ok_or(CKR_TOKEN_NOT_PRESENT)
    }

    /// Whether a token is present (the configuration could be loaded).
    pub fn token_present(&self) -> bool {
        self.bridge.is_some()
    }

    /// Who is logged in.
    pub fn logged_in(&self) -> Option<PinUser> {
        self.bridge.as_ref().and_then(|b| b.logged_in())
    }

    /// Whether the normal user is logged in (private objects are visible and usable).
    pub fn user_logged_in(&self) -> bool {
        self.logged_in() == Some(PinUser::User)
    }

    /// An open session, or `CKR_SESSION_HANDLE_INVALID`.
    pub fn session(&mut self, handle: CK_SESSION_HANDLE) -> CkResult<&mut Session> {
        self.sessions
            .get_mut(&handle)
            .ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// Allocates a session handle (never reused while initialised).
    pub fn next_session_handle(&mut self) -> CK_SESSION_HANDLE {
        self.last_session += 1;
        self.last_session
    }

    /// Checks that `handle` names an object the application may see now (private objects only when the user is
    /// logged in); `CKR_OBJECT_HANDLE_INVALID` otherwise.
    pub fn visible_object(&self, handle: CK_OBJECT_HANDLE) -> CkResult<()> {
        if self.objects.is_private(handle)? && !self.user_logged_in() {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok(())
    }
}
