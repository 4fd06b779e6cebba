//! The cluster's certificate authority: issues the certificate of every node, coordinator and client.
//!
//! `vhsm init` makes the CA and the first certificates; later ones (a node added, another client) are issued from
//! the same CA. Certificates carry their role in their DNS name (see [`crate::identity`]).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use zeroize::Zeroizing;

use crate::identity::Role;

/// A certificate and its private key, both PEM. The key is zeroized when dropped.
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("certificate authority: {0}")]
pub struct PkiError(String);

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError(e.to_string())
    }
}

/// The cluster CA: its certificate and signing key.
pub struct ClusterCa {
    key: KeyPair,
    cert_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

const CA_COMMON_NAME: &str = "vHSM cluster CA";

/// The CA's parameters. They are the same for every cluster (the CA is told apart by its key), so that a CA loaded
/// back from its files issues certificates whose issuer matches its own subject.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl ClusterCa {
    /// Makes a new CA with a fresh P-256 key.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Ok(ClusterCa {
            key,
            cert_pem: cert.pem(),
        })
    }

    /// Loads a CA written earlier by [`ClusterCa::cert_pem`] and [`ClusterCa::key_pem`].
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(ClusterCa {
            key,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate, PEM: what every member pins.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM. Keep it offline once the cluster is set up.
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// Issues a certificate for `role` with a fresh P-256 key.
    pub fn issue(&self, role: &Role) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate()?;
        let dns = role.dns_name();
        let mut params = CertificateParams::new(vec![dns.clone()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, dns);
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match role {
            // Nodes and coordinators both accept connections and make them.
            Role::Node(_) | Role::Coordinator => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Role::Client(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}
