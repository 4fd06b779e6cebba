//! QUIC endpoints with mutual TLS 1.3 pinned to the cluster CA.
//!
//! Both sides present a certificate issued by the cluster CA and accept only such certificates; the peer's role is
//! then read from its certificate ([`crate::identity::Role::of_connection`]).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore,
};

/// The ALPN protocol name of this wire format.
pub const ALPN: &[u8] = b"vhsm/1";

/// How long a connection may stay silent before it is considered dead. Keep-alives are sent far more often, so
/// only a dead or partitioned peer reaches it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(6);

/// Why an endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("TLS setup: {0}")]
pub struct TlsError(String);

/// This process's identity: the cluster CA to pin, its own certificate chain and private key.
pub struct TlsIdentity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
}

impl TlsIdentity {
    /// Loads the CA certificate, the certificate and the private key from PEM files.
    pub fn load(ca_cert: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let ca_pem = read_file(ca_cert)?;
        let cert_pem = read_file(cert)?;
        let key_pem = zeroize::Zeroizing::new(read_file(key)?);
        Self::from_pem(&ca_pem, &cert_pem, &key_pem).map_err(|TlsError(e)| {
            TlsError(format!(
                "{e} (files {}, {}, {})",
                ca_cert.display(),
                cert.display(),
                key.display()
            ))
        })
    }

    /// Parses the CA certificate, the certificate and the private key from PEM.
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let ca = rustls_pemfile::certs(&mut &ca_pem[..])
            .next()
            .ok_or_else(|| TlsError("no CA certificate found".into()))?
            .map_err(|e| TlsError(format!("bad CA certificate: {e}")))?;
        let chain = rustls_pemfile::certs(&mut &cert_pem[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError(format!("bad certificate: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError("no certificate found".into()));
        }
        let key = rustls_pemfile::private_key(&mut &key_pem[..])
            .map_err(|e| TlsError(format!("bad private key: {e}")))?
            .ok_or_else(|| TlsError("no private key found".into()))?;
        Ok(TlsIdentity { ca, chain, key })
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| TlsError(format!("bad CA certificate: {e}")))?;
        Ok(roots)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    // Frequent keep-alives let a node notice within a second that a peer went away (see the mesh).
    transport.keep_alive_interval(Some(Duration::from_millis(250)));
    // IDLE_TIMEOUT is a few seconds: always representable.
    if let Ok(idle) = quinn::IdleTimeout::try_from(IDLE_TIMEOUT) {
        transport.max_idle_timeout(Some(idle));
    }
    transport.max_concurrent_bidi_streams(1024u32.into());
    transport.max_concurrent_uni_streams(1024u32.into());
    Arc::new(transport)
}

/// Whether `error` ended a connection because the peer refused this side's certificate in the TLS handshake (its
/// `CONNECTION_CLOSE` carries the TLS alert as QUIC crypto error 0x100 + alert, RFC 9001 §4.8): why, in an
/// operator's words. `None` for any other end (including TLS alerts that are not about a certificate).
pub fn peer_refused_certificate(error: &quinn::ConnectionError) -> Option<&'static str> {
    let quinn::ConnectionError::ConnectionClosed(close) = error else {
        return None;
    };
    let alert = u8::try_from(u64::from(close.error_code).checked_sub(0x100)?).ok()?;
    certificate_alert(rustls::AlertDescription::from(alert))
}

/// The words for a TLS alert about a certificate (as rustls sends them: an unknown issuer is `unknown_ca`, a
/// certificate out of its validity `certificate_expired`, a signature that does not verify `decrypt_error` — which
/// is also what another cluster's certificate gets, every cluster's CA having the same name —, …); `None` for
/// another alert.
fn certificate_alert(alert: rustls::AlertDescription) -> Option<&'static str> {
    use rustls::AlertDescription as A;
    Some(match alert {
        A::UnknownCA => {
            "unknown CA: not issued by the CA the other side trusts (another cluster's certificate?)"
        }
        A::CertificateExpired => "expired, or not valid yet",
        A::CertificateRevoked => "revoked",
        A::BadCertificate => "bad certificate: malformed, or not valid for its name",
        A::UnsupportedCertificate => "not valid for this use",
        A::CertificateUnknown | A::AccessDenied => "not accepted",
        A::DecryptError => {
            "its signature does not verify: not issued by the CA the other side trusts (another cluster's \
             certificate?), or a key that does not match it"
        }
        A::CertificateRequired | A::NoCertificate => "no certificate was presented",
        _ => return None,
    })
}

/// The server half: requires a client certificate from the cluster CA.
pub fn server_config(identity: &TlsIdentity) -> Result<quinn::ServerConfig, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(identity.roots()?), provider())
            .build()
            .map_err(|e| TlsError(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// The client half: trusts only the cluster CA and presents this identity's certificate.
pub fn client_config(identity: &TlsIdentity) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(identity.roots()?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// The key of the endpoint's QUIC stateless resets, derived from the identity's private key so that it is the same
/// after a restart: a peer that still holds a connection to the previous process then learns at its next packet
/// (a keep-alive at the latest) that the connection is gone — instead of sending into it, unheard, until the idle
/// timeout.
fn reset_key(identity: &TlsIdentity) -> ring::hmac::Key {
    let mut okm = zeroize::Zeroizing::new([0u8; 32]);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, identity.key.secret_der());
    // 32 bytes is a valid HKDF-SHA256 output length.
    let _ = hk.expand(b"vhsm/quic-stateless-reset-key/v1", &mut okm[..]);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &okm[..])
}

/// The key of the endpoint's connection IDs (see [`reset_key`]), also the same after a restart. QUIC answers a
/// packet for a connection it does not know with a stateless reset only if the packet's connection ID is one it
/// could have issued: with a key new at every start (quinn's default), a restarted process dropped the packets
/// of the connections its predecessor had, unanswered, and its peers kept sending into them until a timeout.
fn cid_key(identity: &TlsIdentity) -> u64 {
    let mut okm = zeroize::Zeroizing::new([0u8; 8]);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, identity.key.secret_der());
    // 8 bytes is a valid HKDF-SHA256 output length.
    let _ = hk.expand(b"vhsm/quic-connection-id-key/v1", &mut okm[..]);
    u64::from_le_bytes(*okm)
}

/// An endpoint that accepts connections on `listen` and makes its own with the same identity.
pub fn server_endpoint(
    identity: &TlsIdentity,
    listen: SocketAddr,
) -> Result<quinn::Endpoint, TlsError> {
    let socket = std::net::UdpSocket::bind(listen)
        .map_err(|e| TlsError(format!("cannot listen on {listen}: {e}")))?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| TlsError("no async runtime to run the endpoint on".into()))?;
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key(identity)));
    let cid_key = cid_key(identity);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let mut endpoint =
        quinn::Endpoint::new(config, Some(server_config(identity)?), socket, runtime)
            .map_err(|e| TlsError(format!("cannot listen on {listen}: {e}")))?;
    endpoint.set_default_client_config(client_config(identity)?);
    Ok(endpoint)
}

/// An endpoint that only makes connections (a client), on an ephemeral port.
pub fn client_endpoint(identity: &TlsIdentity, ipv6: bool) -> Result<quinn::Endpoint, TlsError> {
    let bind: SocketAddr = if ipv6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    };
    let mut endpoint = quinn::Endpoint::client(bind)
        .map_err(|e| TlsError(format!("cannot open a UDP socket: {e}")))?;
    endpoint.set_default_client_config(client_config(identity)?);
    Ok(endpoint)
}

/// A connection on which no authenticated frame arrived for this long goes to a peer that is gone (keep-alives flow
/// every quarter of a second both ways on a live one, see `transport`).
pub const STALE_AFTER: Duration = Duration::from_millis(1000);

/// Whether a kept connection still reaches its peer: QUIC notices a peer that is gone (e.g. restarted) only at the
/// idle timeout, and what is sent meanwhile is silently lost. A connection on which no authenticated frame arrived
/// for [`STALE_AFTER`] despite the keep-alives is taken as dead.
///
/// Authenticated frames (acknowledgements, keep-alive pings, stream data: frames that decrypted), not datagrams:
/// whatever answers a dead connection's packets (a stateless reset that does not authenticate, an ICMP error) is
/// ignored by QUIC but counted as a received datagram — so counting datagrams took a dead connection for a live
/// one.
#[derive(Debug)]
pub struct Liveness(std::sync::Mutex<(u64, std::time::Instant)>);

impl Liveness {
    /// Watches `conn`, just made (or just found alive).
    pub fn new(conn: &quinn::Connection) -> Self {
        Liveness(std::sync::Mutex::new((
            authenticated_frames(conn),
            std::time::Instant::now(),
        )))
    }

    /// Whether `conn` is open and an authenticated frame arrived on it within the last [`STALE_AFTER`].
    pub fn is_live(&self, conn: &quinn::Connection) -> bool {
        if conn.close_reason().is_some() {
            return false;
        }
        let frames = authenticated_frames(conn);
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if frames != seen.0 {
            *seen = (frames, std::time::Instant::now());
            return true;
        }
        seen.1.elapsed() < STALE_AFTER
    }

    /// How long since the last authenticated frame arrived on `conn` ([`Duration::MAX`] if it is closed). While a
    /// request is outstanding the peer acknowledges within milliseconds, and keep-alives flow every quarter of a
    /// second: a silence of several of those means the peer is paused, overloaded past answering, or cut off.
    pub fn silent_for(&self, conn: &quinn::Connection) -> Duration {
        if conn.close_reason().is_some() {
            return Duration::MAX;
        }
        let frames = authenticated_frames(conn);
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if frames != seen.0 {
            *seen = (frames, std::time::Instant::now());
        }
        seen.1.elapsed()
    }
}

/// How many frames the peer sent on `conn` that decrypted (see [`Liveness`]).
fn authenticated_frames(conn: &quinn::Connection) -> u64 {
    let frames = conn.stats().frame_rx;
    frames
        .acks
        .saturating_add(frames.ping)
        .saturating_add(frames.stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_alert_about_a_certificate_is_told_apart_from_other_ends() {
        let closed_by_peer = |code: quinn::TransportErrorCode| {
            quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
                error_code: code,
                frame_type: None,
                reason: Default::default(),
            })
        };
        // The peer refused our certificate: unknown_ca (48), certificate_expired (45).
        let refusal =
            peer_refused_certificate(&closed_by_peer(quinn::TransportErrorCode::crypto(48)));
        assert!(
            refusal.is_some_and(|r| r.contains("unknown CA: not issued by the CA")),
            "{refusal:?}"
        );
        assert_eq!(
            peer_refused_certificate(&closed_by_peer(quinn::TransportErrorCode::crypto(45))),
            Some("expired, or not valid yet")
        );
        // Not about a certificate: no ALPN in common (120), a plain protocol error, a timeout, a reset.
        for code in [
            quinn::TransportErrorCode::crypto(120),
            quinn::TransportErrorCode::PROTOCOL_VIOLATION,
        ] {
            assert_eq!(peer_refused_certificate(&closed_by_peer(code)), None);
        }
        assert_eq!(
            peer_refused_certificate(&quinn::ConnectionError::TimedOut),
            None
        );
        assert_eq!(
            peer_refused_certificate(&quinn::ConnectionError::Reset),
            None
        );
    }
}
