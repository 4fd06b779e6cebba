//! Who a peer is: the role and name its certificate carries.
//!
//! Every certificate in a cluster is issued by the cluster CA and carries exactly one DNS subject alternative name
//! that says its role:
//!
//! | role | name |
//! |---|---|
//! | node with id N | `node-N.vhsm` |
//! | coordinator | `coordinator.vhsm` |
//! | client called C | `C.client.vhsm` |
//!
//! A connection's role is read from the certificate the TLS handshake verified, never from a message.

use std::fmt;

use rustls::pki_types::CertificateDer;
use vhsm_core::NodeId;

/// The role a certificate grants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A share-holding node.
    Node(NodeId),
    /// A coordinator.
    Coordinator,
    /// An application or operator using the client API.
    Client(String),
}

impl Role {
    /// The DNS name this role's certificate carries, and the server name used to reach it.
    pub fn dns_name(&self) -> String {
        match self {
            Role::Node(id) => format!("node-{id}.vhsm"),
            Role::Coordinator => "coordinator.vhsm".to_string(),
            Role::Client(name) => format!("{name}.client.vhsm"),
        }
    }

    /// Parses a DNS name back into a role.
    pub fn from_dns_name(name: &str) -> Option<Role> {
        if name == "coordinator.vhsm" {
            return Some(Role::Coordinator);
        }
        if let Some(id) = name
            .strip_prefix("node-")
            .and_then(|rest| rest.strip_suffix(".vhsm"))
        {
            return id
                .parse::<NodeId>()
                .ok()
                .filter(|id| *id != 0)
                .map(Role::Node);
        }
        if let Some(client) = name.strip_suffix(".client.vhsm") {
            if is_valid_client_name(client) {
                return Some(Role::Client(client.to_string()));
            }
        }
        None
    }

    /// Reads the role of a peer from the certificate chain its TLS handshake presented (already verified against
    /// the cluster CA by rustls).
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Option<Role> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let san = parsed.subject_alternative_name().ok()??;
        let mut roles = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Role::from_dns_name(dns),
                _ => None,
            });
        let role = roles.next()?;
        // A certificate naming two roles is not one of ours.
        if roles.next().is_some() {
            return None;
        }
        Some(role)
    }

    /// The role of the peer of an established QUIC connection.
    pub fn of_connection(connection: &quinn::Connection) -> Option<Role> {
        let identity = connection.peer_identity()?;
        let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
        Role::from_certificate(chain.first()?)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Node(id) => write!(f, "node {id}"),
            Role::Coordinator => write!(f, "coordinator"),
            Role::Client(name) => write!(f, "client {name}"),
        }
    }
}

/// Client names are DNS labels: 1–63 of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn is_valid_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in [
            Role::Node(3),
            Role::Coordinator,
            Role::Client("app-1".into()),
        ] {
            assert_eq!(Role::from_dns_name(&role.dns_name()), Some(role));
        }
        assert_eq!(Role::from_dns_name("node-0.vhsm"), None);
        assert_eq!(Role::from_dns_name("node-x.vhsm"), None);
        assert_eq!(Role::from_dns_name("Evil.client.vhsm"), None);
        assert_eq!(Role::from_dns_name("example.com"), None);
    }
}
