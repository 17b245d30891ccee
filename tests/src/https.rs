//! A small HTTPS client for the console tests and benchmarks: HTTP/1.1 over TLS that trusts only
//! the coordinator's CA.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A client for one console address.
pub struct Https {
    addr: SocketAddr,
    tls: TlsConnector,
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Https {
    pub fn new(addr: SocketAddr, ca_pem: &[u8]) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(c?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// A new connection (HTTP/1.1 over TLS).
    pub async fn connect(&self) -> anyhow::Result<Sender> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self.tls.connect(name, tcp).await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

pub fn request(
    method: &str,
    path: &str,
    host: &str,
    cookie: Option<&str>,
    body: &str,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(c) = cookie {
        b = b.header("cookie", format!("rampart_session={c}"));
    }
    if method == "POST" {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    Ok(b.body(Full::new(Bytes::from(body.to_string())))?)
}

pub async fn text(resp: Response<hyper::body::Incoming>) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned())
}

pub fn server_ms(resp: &Response<hyper::body::Incoming>) -> Option<f64> {
    resp.headers()
        .get("server-timing")?
        .to_str()
        .ok()?
        .split("dur=")
        .nth(1)?
        .parse()
        .ok()
}
