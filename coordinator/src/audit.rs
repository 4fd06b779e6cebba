//! Who asked: the coordinator's part of the nodes' audit logs (the node's `audit` module).
//!
//! The audit logs live on the nodes; the coordinator keeps none of its own. It tells the nodes who asked for each
//! request, explicitly: the server makes, for each client request, a [`NodePool::on_behalf`] handle naming the
//! requester ([`requester`]: `NAME (user)`, `NAME (so)` or `NAME (not logged in)`, NAME from the client's
//! certificate) and the client request's name (`sign`, `decrypt`, …), and the handler passes that handle to every
//! service it calls; [`crate::nodes::NodePool::call`] wraps each node request made through it in
//! [`NodeRequest::OnBehalf`] ([`wrap`]). Requests the coordinator makes on its own (learning the keys at start,
//! giving the membership) go through the coordinator's own pool, bare, and are recorded as asked by `coordinator`.
//!
//! A failed login happens here, not on a node: [`record_login_failure`] reports it to every node, which records a
//! `login-failed` entry (forwarded rather than logged locally, so that `vhsm audit verify`/`show` find everything
//! in one place and a coordinator, which may be one of several and is otherwise stateless, keeps no log). This is
//! best effort: the login is refused whether or not the nodes could record it.

use std::time::Duration;

use vhsm_core::PinUser;
use vhsm_wire::node_api::NodeRequest;

use crate::error::Error;
use crate::nodes::{NodePool, Requester};

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

/// `request` wrapped for `requester` (`None`: it is wrapped already).
pub fn wrap(requester: &Requester, request: &NodeRequest) -> Option<NodeRequest> {
    if matches!(request, NodeRequest::OnBehalf { .. }) {
        return None;
    }
    Some(NodeRequest::OnBehalf {
        requester: requester.who.clone(),
        purpose: requester.purpose.to_string(),
        request: Box::new(request.clone()),
    })
}

/// Reports a failed login to every node (best effort; see the module docs).
pub async fn record_login_failure(pool: &NodePool, user: PinUser, error: &Error) {
    let answers = pool
        .call_each(
            &pool.ids(),
            |_| NodeRequest::LoginFailed {
                user,
                error: error.to_string(),
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
