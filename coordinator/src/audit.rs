//! Who asked: the coordinator's part of the nodes' audit logs (the node's `audit` module).
//!
//! The audit logs live on the nodes; the coordinator keeps none of its own. It tells the nodes who asked for each
//! request, explicitly: the server makes, for each client request, a [`crate::nodes::NodePool::on_behalf`] handle
//! naming the requester ([`requester`]: `NAME (user)`, `NAME (so)` or `NAME (not logged in)`, NAME from the client's
//! certificate) and the client request's name (`sign`, `decrypt`, …), and the handler passes that handle to every
//! service it calls; [`crate::nodes::NodePool::call`] wraps each node request made through it in
//! [`NodeRequest::OnBehalf`] ([`wrap`]). Requests the coordinator makes on its own (learning the keys at start,
//! giving the membership) go through the coordinator's own pool, bare, and are recorded as asked by `coordinator`.
//!
//! A login is recorded by the nodes too: each checks the PIN itself (`check-pin`, see [`crate::token`]) and
//! records the check and its outcome, with the requester, in its own log; the coordinator keeps no log.

use vhsm_core::PinUser;
use vhsm_wire::node_api::NodeRequest;

use crate::nodes::Requester;

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
