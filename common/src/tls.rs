//! Dialing the coordinator: every connection is TLS (rustls), with the coordinator's CA as the
//! only root, and a client certificate when the caller has one. Also the CA pinning used by
//! enrolment: the agent knows only the CA's fingerprint and must find that CA in the chain the
//! coordinator presents before it trusts anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long to wait for TCP + TLS when dialing (long enough for a congested WAN link).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid coordinator address {0:?}: expected https://HOST:PORT")]
    BadAddress(String),
    #[error("cannot read {what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot reach the coordinator at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error(
        "CA fingerprint mismatch: the coordinator at {addr} presents a CA with fingerprint {presented}, \
         but {expected} was given; check --ca-fingerprint against `rampart ca fingerprint` on the coordinator"
    )]
    FingerprintMismatch {
        addr: String,
        presented: String,
        expected: String,
    },
    #[error("malformed CA fingerprint {0:?}: expected sha256: followed by 64 hex digits")]
    BadFingerprint(String),
}

/// `sha256:<hex>` of a DER certificate: the form users copy and paste.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Normalises a user-supplied fingerprint (`sha256:` prefix optional, `:` separators and case
/// ignored) to the form [`fingerprint`] returns.
pub fn normalize_fingerprint(s: &str) -> Result<String, TlsError> {
    let hexpart = s
        .trim()
        .strip_prefix("sha256:")
        .unwrap_or(s.trim())
        .replace(':', "")
        .to_ascii_lowercase();
    if hexpart.len() != 64 || !hexpart.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TlsError::BadFingerprint(s.to_string()));
    }
    Ok(format!("sha256:{hexpart}"))
}

/// Reads every certificate in a PEM text.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_string(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

/// The addresses in a coordinator setting: one, or several separated by commas (coordinators
/// sharing one fleet); each must parse as a [`Target`].
pub fn coordinator_list(setting: &str) -> Result<Vec<String>, TlsError> {
    let list: Vec<String> = setting
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(TlsError::BadAddress(setting.to_string()));
    }
    for a in &list {
        Target::parse(a)?;
    }
    Ok(list)
}

/// A coordinator address, parsed.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to dial.
    pub authority: String,
    /// The name the server certificate must carry.
    pub server_name: ServerName<'static>,
}

impl Target {
    /// Parses `https://HOST:PORT` (also accepts a bare `HOST:PORT`).
    pub fn parse(addr: &str) -> Result<Self, TlsError> {
        let bad = || TlsError::BadAddress(addr.to_string());
        let with_scheme = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("https://{addr}")
        };
        let uri: Uri = with_scheme.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("https") {
            return Err(bad());
        }
        let host = uri.host().ok_or_else(bad)?;
        let port = uri.port_u16().ok_or_else(bad)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string()).map_err(|_| bad())?;
        Ok(Self {
            authority: format!("{host}:{port}"),
            server_name,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client TLS config trusting only `ca_pem`, presenting `identity` (certificate chain PEM,
/// private key PEM) when given. ALPN is h2, as gRPC needs.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(ca_pem, "the CA certificate")? {
        roots.add(c)?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = certs_from_pem(cert, "the client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Pem {
                what: "the private key".into(),
                reason: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

async fn tls_connect(
    target: &Target,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, std::io::Error> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.authority))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    tcp.set_nodelay(true)?;
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(config).connect(target.server_name.clone(), tcp),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// Opens a gRPC channel to `addr` over TLS with `config`. Connects eagerly so that an unreachable
/// coordinator or a certificate problem is reported here, with its reason.
pub async fn dial(addr: &str, config: Arc<ClientConfig>) -> Result<Channel, TlsError> {
    let target = Target::parse(addr)?;
    let unreachable = |reason: String| TlsError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    // Handshake here rather than inside tonic, whose error would hide the TLS reason; the channel
    // then takes this connection for its first use and dials anew only to reconnect.
    let first = tls_connect(&target, config.clone())
        .await
        .map_err(|e| unreachable(crate::error_chain(&e)))?;
    let first = Arc::new(Mutex::new(Some(first)));
    let endpoint = Endpoint::from_shared(format!("http://{}", target.authority))
        .map_err(|_| TlsError::BadAddress(addr.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let connector = tower::service_fn(move |_: Uri| {
        let (target, config) = (target.clone(), config.clone());
        let ready = first.lock().unwrap_or_else(|p| p.into_inner()).take();
        async move {
            let stream = match ready {
                Some(s) => s,
                None => tls_connect(&target, config).await?,
            };
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| unreachable(crate::error_chain(&e)))
}

/// Accepts any chain but keeps it, so the caller can look for the pinned CA in it. Handshake
/// signatures are still checked, so the peer does hold the key of the certificate it shows.
#[derive(Debug)]
struct ChainRecorder {
    seen: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(end_entity.clone().into_owned());
        seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to `addr`, and returns the CA certificate (PEM) from the presented chain whose
/// fingerprint equals `expected`. Nothing is sent over that first connection; the caller then
/// dials again, verifying the server against the returned CA as usual.
pub async fn fetch_pinned_ca(addr: &str, expected: &str) -> Result<String, TlsError> {
    let expected = normalize_fingerprint(expected)?;
    let target = Target::parse(addr)?;
    let recorder = Arc::new(ChainRecorder {
        seen: Mutex::new(Vec::new()),
        provider: provider(),
    });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tls_connect(&target, Arc::new(config))
        .await
        .map_err(|e| TlsError::Unreachable {
            addr: addr.to_string(),
            reason: crate::error_chain(&e),
        })?;
    let seen = recorder
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(ca) = seen.iter().find(|c| fingerprint(c) == expected) {
        return Ok(pem_encode(ca));
    }
    let presented = seen
        .last()
        .map(|c| fingerprint(c))
        .unwrap_or_else(|| "nothing".into());
    Err(TlsError::FingerprintMismatch {
        addr: addr.to_string(),
        presented,
        expected,
    })
}

/// PEM-encodes one DER certificate.
pub fn pem_encode(der: &CertificateDer<'_>) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalise() {
        let fp = fingerprint(b"abc");
        assert!(fp.starts_with("sha256:ba7816bf"));
        assert_eq!(
            normalize_fingerprint(&fp.to_uppercase().replace("SHA256:", "")).unwrap(),
            fp
        );
        assert!(matches!(
            normalize_fingerprint("sha256:abc"),
            Err(TlsError::BadFingerprint(_))
        ));
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("https://127.0.0.1:7443").unwrap().authority,
            "127.0.0.1:7443"
        );
        assert_eq!(
            Target::parse("localhost:1").unwrap().authority,
            "localhost:1"
        );
        assert_eq!(
            Target::parse("https://[::1]:7443").unwrap().authority,
            "[::1]:7443"
        );
        assert!(Target::parse("http://x:1").is_err());
        assert!(Target::parse("https://x").is_err());
    }

    #[test]
    fn pem_round_trips() {
        let der = CertificateDer::from((0u8..=200).collect::<Vec<u8>>());
        let pem = pem_encode(&der);
        let back = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back.as_ref(), der.as_ref());
    }
}
