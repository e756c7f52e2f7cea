//! The lease heartbeat of one in-flight step: renews the lease and the in-flight index entry,
//! and cancels the step if the lease is lost or cannot be renewed before it expires.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_store::{Lease, Store};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;

/// Renews `lease` every `every` until `done` fires. Cancels `step` when the lease is gone.
/// `due` holds the score last written to the in-flight index.
pub async fn heartbeat(
    store: Store,
    lease: Lease,
    ttl_ms: u64,
    every: Duration,
    due: Arc<AtomicI64>,
    step: CancellationToken,
    done: CancellationToken,
) {
    let mut renewed_at = now_ms();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = done.cancelled() => return,
        }
        match store.renew(&lease, ttl_ms).await {
            Ok(true) => {
                renewed_at = now_ms();
                let next_due = renewed_at + ttl_ms as i64;
                if store.inflight_set(&lease.run_id, next_due).await.is_ok() {
                    due.store(next_due, Ordering::SeqCst);
                }
            }
            Ok(false) => {
                tracing::warn!(run_id = %lease.run_id, fence = lease.fence, "lease lost, abandoning step");
                metrics::counter!("baton_worker_leases_lost_total").increment(1);
                step.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = %lease.run_id, error = %e, "lease renewal failed");
                if now_ms() - renewed_at >= ttl_ms as i64 {
                    tracing::warn!(run_id = %lease.run_id, "lease expired without renewal, abandoning step");
                    step.cancel();
                    return;
                }
            }
        }
    }
}
