//! gRPC services, one file per service, and the server that hosts them (with the standard health
//! and reflection services). This is the only place that turns domain errors into `Status`.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod chaos;
pub mod compliance;
pub mod enroll_guard;
pub mod experiments;
pub mod fleet;
pub mod threats;
pub mod tokens;
pub mod waivers;

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::fleet::Fleet;
use crate::pki::Ca;
use crate::store::{Store, StoreError};

/// What every service shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub fleet: Arc<Fleet>,
    pub ca: Arc<Ca>,
    /// Policy packs loaded at start.
    pub packs: Arc<crate::compliance::Packs>,
    /// Cancelled at shutdown; sessions end with it.
    pub shutdown: CancellationToken,
    /// Rate limits and refusal summaries for `Enroll`.
    pub enroll_guard: Arc<enroll_guard::EnrollGuard>,
    /// How long agent certificates live (agents renew them at two thirds).
    pub agent_cert_lifetime: std::time::Duration,
    /// Experiments and game days in progress.
    pub chaos: Arc<crate::chaos::Chaos>,
}

/// A caller's timeout in milliseconds: 0 means `default`, anything above `max` is capped.
pub fn requested_timeout(
    ms: u32,
    default: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    match ms {
        0 => default,
        ms => std::time::Duration::from_millis(u64::from(ms)).min(max),
    }
}

/// Storage failures are the coordinator's problem, not the caller's: log the detail, say little.
pub fn store_status(err: StoreError) -> Status {
    tracing::error!(%err, "storage operation failed");
    Status::internal("the coordinator could not read or write its database; see its log")
}

/// gRPC's codes for bad input: tonic reports an oversized message as OUT_OF_RANGE and an
/// undecodable one as INTERNAL; callers should see RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
pub fn client_input_status(status: Status) -> Status {
    let msg = status.message();
    match status.code() {
        tonic::Code::OutOfRange if msg.contains("message length too large") => {
            Status::resource_exhausted(format!(
                "message too large: {msg} (Rampart accepts at most {} bytes)",
                rampart_proto::MAX_MESSAGE_BYTES
            ))
        }
        tonic::Code::Internal if msg.contains("failed to decode Protobuf message") => {
            Status::invalid_argument(format!("malformed message: {msg}"))
        }
        _ => status,
    }
}

/// Tower layer applying [`client_input_status`] to statuses tonic puts in response headers
/// (which is where unary calls fail when their request cannot be decoded).
#[derive(Debug, Clone, Copy, Default)]
pub struct InputStatusLayer;

impl<S> tower::Layer<S> for InputStatusLayer {
    type Service = InputStatus<S>;
    fn layer(&self, inner: S) -> Self::Service {
        InputStatus(inner)
    }
}

/// See [`InputStatusLayer`].
#[derive(Debug, Clone)]
pub struct InputStatus<S>(S);

impl<S, B, RB> tower::Service<http::Request<B>> for InputStatus<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            if let Some(status) = Status::from_header_map(resp.headers()) {
                let code = status.code();
                let mapped = client_input_status(status);
                if mapped.code() != code {
                    let headers = resp.headers_mut();
                    headers.remove("grpc-status");
                    headers.remove("grpc-message");
                    let _ = mapped.add_header(headers);
                }
            }
            Ok(resp)
        })
    }
}
