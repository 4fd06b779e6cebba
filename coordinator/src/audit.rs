//! Who asked: the coordinator's part of the nodes' audit logs (the node's `audit` module).
//!
//! The audit logs live on the nodes; the coordinator keeps none of its own. It tells the nodes who asked for each
//! request: while a client request is handled, [`on_behalf`] keeps the requester (`NAME (user)`, `NAME (so)` or
//! `NAME (not logged in)`, NAME from the client's certificate) and the client request's name (`sign`, `decrypt`,
//! …) for the task, and [`crate::nodes::NodePool::call`] wraps every node request made meanwhile in
//! [`NodeRequest::OnBehalf`]. Requests the coordinator makes on its own (learning the keys, giving the membership)
//! go bare and are recorded as asked by `coordinator`.
//!
//! A failed login happens here, not on a node: [`record_login_failure`] reports it to every node, which records a
//! `login-failed` entry (forwarded rather than logged locally, so that `vhsm audit verify`/`show` find everything
//! in one place and a coordinator, which may be one of several and is otherwise stateless, keeps no log). This is
//! best effort: the login is refused whether or not the nodes could record it.

use std::{future::Future, time::Duration};

use vhsm_core::PinUser;
use vhsm_wire::{node_api::NodeRequest, WireError};

use crate::nodes::NodePool;

tokio::task_local! {
    static REQUESTER: (String, &'static str);
}

/// How long a node may take to record a failed login.
const NOTE_TIMEOUT: Duration = Duration::from_secs(2);

/// The requester text of a client `client` logged in as `user`.
pub fn requester(client: &str, user: Option<PinUser>) -> String {
    match user {
        Some(PinUser::User) => format!("{client} (user)"),
        Some(PinUser::SecurityOfficer) => format!("{client} (so)"),
        None => format!("{client} (not logged in)"),
    }
}

/// Runs `work` (the handling of one client request) with its requester and purpose known to the node calls.
pub async fn on_behalf<F: Future>(requester: String, purpose: &'static str, work: F) -> F::Output {
    REQUESTER.scope((requester, purpose), work).await
}

/// `request` wrapped for the client whose request is being handled, if any.
pub fn wrap(request: &NodeRequest) -> Option<NodeRequest> {
    if matches!(request, NodeRequest::OnBehalf { .. }) {
        return None;
    }
    REQUESTER
        .try_with(|(requester, purpose)| NodeRequest::OnBehalf {
            requester: requester.clone(),
            purpose: (*purpose).to_string(),
            request: Box::new(request.clone()),
        })
        .ok()
}

/// Reports a failed login to every node (best effort; see the module docs).
pub async fn record_login_failure(pool: &NodePool, user: PinUser, error: &WireError) {
    let answers = pool
        .call_each(
            &pool.ids(),
            |_| NodeRequest::LoginFailed {
                user,
                error: error.message.clone(),
            },
            NOTE_TIMEOUT,
        )
        .await;
    for (node, answer) in answers {
        if let Err(e) = answer {
            tracing::warn!(node, error = %e, "a node could not record a failed login in its audit log");
        }
    }
}
