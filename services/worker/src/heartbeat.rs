//! The lease heartbeat of one in-flight step: renews the lease and the in-flight index entry,
//! and stops the step when the lease is lost (or cannot be renewed before it expires) or when
//! a stop (cancel, deadline) was requested for the run.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use baton_core::stop::StopRequest;
use baton_store::{Index, Lease, Store};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;

/// Why a step's cancellation token fired. The first cause set wins.
#[derive(Debug, Clone)]
pub enum Cause {
    /// The lease is gone: someone else may own the run. Write nothing.
    LeaseLost,
    /// The run was cancelled or is overdue: commit that instead of the step.
    Stop(StopRequest),
    /// The worker is shutting down: hand the step back.
    Drain,
}

/// Shared slot for the cause of a step's cancellation.
pub type CauseSlot = Arc<OnceLock<Cause>>;

/// What the heartbeat needs besides the store and lease.
pub struct Beat {
    /// Lease TTL to renew to.
    pub ttl_ms: u64,
    /// Renewal period.
    pub every: Duration,
    /// Score last written to the in-flight index.
    pub due: Arc<AtomicI64>,
    /// Cancelled to stop the step.
    pub step: CancellationToken,
    /// Why the step was stopped.
    pub cause: CauseSlot,
    /// Fired when the step is over.
    pub done: CancellationToken,
}

/// How often a running step looks for a stop request between lease renewals.
const STOP_POLL: Duration = Duration::from_secs(1);

/// Renews `lease` every `beat.every` until `beat.done` fires, and looks for a stop request
/// every second in between, so a cancel reaches a long tool call within about a second.
pub async fn heartbeat(store: Store, lease: Lease, beat: Beat) {
    let mut renewed_at = now_ms();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(STOP_POLL.min(beat.every)) => {}
            _ = beat.done.cancelled() => return,
        }
        if now_ms() - renewed_at < beat.every.as_millis() as i64 {
            if let Ok(Some(stop)) = store.stop_requested(&lease.run_id).await {
                stop_step(&lease, &beat, stop);
                return;
            }
            continue;
        }
        match store.renew(&lease, beat.ttl_ms).await {
            Ok((true, stop)) => {
                renewed_at = now_ms();
                let next_due = renewed_at + beat.ttl_ms as i64;
                if store.index_set(Index::Inflight, &lease.run_id, next_due).await.is_ok() {
                    beat.due.store(next_due, Ordering::SeqCst);
                }
                if let Some(stop) = stop {
                    stop_step(&lease, &beat, stop);
                    return;
                }
            }
            Ok((false, _)) => {
                tracing::warn!(run_id = %lease.run_id, fence = lease.fence, "lease lost, abandoning step");
                metrics::counter!(crate::metric_definitions::LEASES_LOST).increment(1);
                let _ = beat.cause.set(Cause::LeaseLost);
                beat.step.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = %lease.run_id, error = %e, "lease renewal failed");
                if now_ms() - renewed_at >= beat.ttl_ms as i64 {
                    tracing::warn!(run_id = %lease.run_id, "lease expired without renewal, abandoning step");
                    let _ = beat.cause.set(Cause::LeaseLost);
                    beat.step.cancel();
                    return;
                }
            }
        }
    }
}

fn stop_step(lease: &Lease, beat: &Beat, stop: StopRequest) {
    tracing::info!(run_id = %lease.run_id, code = %stop.code, by = %stop.by, "stop requested, cancelling step");
    let _ = beat.cause.set(Cause::Stop(stop));
    beat.step.cancel();
}
