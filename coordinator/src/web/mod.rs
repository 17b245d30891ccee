//! What the coordinator serves over HTTP besides gRPC: the web console over HTTPS on its own
//! listener (`web_listen`), and `/metrics` for Prometheus on another, plain-HTTP one
//! (`metrics_listen`) with no secrets and no per-host labels. Both are off unless configured.

pub mod console;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Serves `/metrics` on `addr` until `shutdown`; returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    store: Store,
    group_label: Option<String>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let render: rampart_common::metrics::Render = Arc::new(move || {
        let store = store.clone();
        let group_label = group_label.clone();
        Box::pin(async move {
            metrics::scrape(&store, group_label.as_deref())
                .await
                .map_err(|e| e.to_string())
        })
    });
    rampart_common::metrics::serve(addr, render, shutdown).await
}
