//! The console's HTTPS listener: TLS with the coordinator's server certificate (no client
//! certificate: people log in with tokens), HTTP/1.1 and HTTP/2, bounded connections and
//! handshakes, and a graceful end at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Console, router};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// A TLS handshake or a request head that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections left open at shutdown get this long to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// The TLS settings for the console from the server certificate chain and key (PEM).
pub fn tls_config(chain_pem: &str, key_pem: &str) -> std::io::Result<Arc<ServerConfig>> {
    let bad = |what: &str, e: String| std::io::Error::other(format!("console TLS {what}: {e}"));
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad("key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocols", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad("certificate", e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the console on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    console: Arc<Console>,
    tls: Arc<ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    let app = router(console);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(%e, "console: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            // Each request learns which address it came from (login failures are counted per
            // address).
            let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                app.clone(),
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(super::session::Peer(peer.ip()));
                    req
                },
            ));
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        debug!(%peer, %e, "console: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%peer, "console: TLS handshake timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    debug!(%peer, %e, "console: connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            debug!("console: connections still open at shutdown were dropped");
        }
    });
    info!(addr = %bound, "web console listening (HTTPS)");
    Ok(bound)
}
