//! What the coordinator serves over HTTP besides gRPC: `/metrics` for Prometheus, on its own
//! plain-HTTP listener (`metrics_listen`), with no secrets and no per-host labels. Off unless
//! configured.

pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::Store;

/// The Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn handle(
    req: Request<hyper::body::Incoming>,
    store: Store,
    group_label: Option<Arc<str>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = ctype.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: Rampart serves /metrics here\n".into(),
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".into(),
        ));
    }
    match metrics::scrape(&store, group_label.as_deref()).await {
        Ok(text) => Ok(reply(StatusCode::OK, CONTENT_TYPE, text)),
        Err(err) => {
            warn!(%err, "metrics scrape could not read the database");
            Ok(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the coordinator could not read its database; see its log\n".into(),
            ))
        }
    }
}

/// Serves `/metrics` on `addr` until `shutdown`; returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    store: Store,
    group_label: Option<String>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let group_label: Option<Arc<str>> = group_label.map(Arc::from);
    info!(addr = %bound, "metrics listening (plain HTTP, GET /metrics)");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(err) => {
                        warn!(%err, "metrics listener could not accept");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let store = store.clone();
            let group_label = group_label.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    handle(req, store.clone(), group_label.clone())
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    Ok(bound)
}
