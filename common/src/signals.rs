//! Shutdown on SIGTERM or SIGINT, for the binaries' long-running commands.

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Cancels `token` on SIGTERM or SIGINT. Must be called inside a tokio runtime.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received; shutting down"),
            _ = int.recv() => info!("SIGINT received; shutting down"),
        }
        token.cancel();
    });
}
