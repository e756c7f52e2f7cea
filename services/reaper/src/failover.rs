//! Failover in seconds: a worker that stopped beating (`baton:workers`) is dead. Its leases are
//! broken and its runs recovered at once — events re-published, the step re-dispatched to a
//! partition a live worker owns — instead of waiting for the lease TTL. Tasks queued in the
//! partitions it owned would wait for the consumer group to expire it, so every run waiting to
//! be claimed (an in-flight entry not in a retry back-off) is re-dispatched to a live partition
//! too; a duplicate task is refused at its claim. A worker that is alive but slow keeps its
//! leases until they expire as before.

use baton_store::Index;
use baton_telemetry::now_ms;

use crate::recover::recover;
use crate::Reaper;

/// Recovers the runs of every worker whose beat is older than `worker.liveness_ttl_ms`.
pub async fn sweep(reaper: &Reaper) -> anyhow::Result<()> {
    let store = &reaper.store;
    let ttl = reaper.config.worker.liveness_ttl_ms;
    let dead = store.dead_workers(ttl).await?;
    for worker in &dead {
        let mut recovered = 0;
        for run_id in store.worker_runs(worker).await? {
            // A worker that was only stalled and beats again keeps what it still holds.
            if !store.worker_still_dead(worker, ttl).await? {
                tracing::warn!(worker, "worker beats again; its remaining leases are kept");
                break;
            }
            if store.break_lease(&run_id, worker).await? {
                metrics::counter!(crate::metric_definitions::LEASES_BROKEN).increment(1);
                if let Err(e) = recover(reaper, &run_id, None).await {
                    // The in-flight entry stays: the regular sweep tries again.
                    tracing::warn!(run_id, error = %e, "cannot recover a dead worker's run yet");
                }
                recovered += 1;
            }
        }
        store.worker_gone(worker).await?;
        metrics::counter!(crate::metric_definitions::DEAD_WORKERS).increment(1);
        tracing::warn!(worker, runs = recovered, "worker stopped beating; its runs were recovered");
    }
    if !dead.is_empty() {
        // Runs whose task may sit in a dead worker's partitions: dispatched (entry due within the
        // dispatch grace) but not claimed. Retries still in their back-off are due later.
        let grace = reaper.config.runs.dispatch_grace_ms as i64;
        for shard in baton_store::shards() {
            let batch = reaper.config.reaper.batch;
            let waiting = store.index_due(Index::Inflight, shard, now_ms() + grace, batch).await?;
            for (run_id, at) in waiting {
                if let Err(e) = recover(reaper, &run_id, Some(at)).await {
                    tracing::warn!(run_id, error = %e, "cannot re-dispatch a run waiting to be claimed");
                }
            }
        }
    }
    Ok(())
}
