//! The shutdown signal: SIGTERM or SIGINT cancels a token (start the bounded drain);
//! a second signal exits at once.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM/SIGINT. The second one exits the process with 130.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutdown signal received, draining");
        fired.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second shutdown signal, exiting now");
        std::process::exit(130);
    });
    token
}

/// Runs `drain` for at most `grace`; warns and returns false if the grace runs out first.
pub async fn bounded_drain(what: &str, grace: Duration, drain: impl Future<Output = ()>) -> bool {
    let finished = tokio::time::timeout(grace, drain).await.is_ok();
    if !finished {
        tracing::warn!(what, grace_ms = grace.as_millis() as u64, "drain grace period ran out");
    }
    finished
}
