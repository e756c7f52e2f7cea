//! A worker restarted under its stable name (`worker.name`, e.g. the pod name) takes over from
//! the instance it replaces, which was killed or crashed and so never left: every registered
//! worker of that name but this one is declared dead at once (the reaper's next failover sweep
//! breaks its leases and re-dispatches its runs), and removed from the lane's consumer group, so
//! the group assigns its partitions now instead of after its session times out. Runs before the
//! consumer joins. A worker without a name has nothing to take over: a dead one is still found by
//! its missing beats and its session timeout.

use std::time::Duration;

use crate::Worker;

/// Longest the eviction from the consumer group may take before the worker joins anyway.
const EVICT_WITHIN: Duration = Duration::from_secs(5);

/// Declares this worker's earlier instances dead and removes them from the lane's group.
pub async fn take_over(worker: &Worker) {
    let cfg = &worker.config;
    if cfg.worker.name.is_empty() {
        return;
    }
    let prefix = baton_service::named_prefix(&cfg.worker.name);
    let earlier = match worker.store.workers_with_prefix(&prefix).await {
        Ok(ids) => ids.into_iter().filter(|id| *id != worker.id).collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for earlier instances of this worker");
            return;
        }
    };
    // Their member ids first: the reaper forgets a dead worker's once it recovered its runs.
    let members = worker.store.worker_members(&earlier).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the group member ids of earlier instances");
        Vec::new()
    });
    for id in &earlier {
        match worker.store.worker_declare_dead(id).await {
            Ok(()) => tracing::warn!(earlier = %id, "an earlier instance of this worker is declared dead"),
            Err(e) => tracing::warn!(earlier = %id, error = %e, "cannot declare an earlier instance dead"),
        }
    }
    let group = worker.producer.topics().worker_group(&cfg.worker.lane);
    match baton_bus::evict_members(&cfg.kafka.brokers, &group, &members, &worker.id, EVICT_WITHIN).await {
        Ok(evicted) if evicted.is_empty() => {}
        Ok(evicted) => {
            metrics::counter!(crate::metric_definitions::PREDECESSORS_EVICTED).increment(evicted.len() as u64);
            tracing::warn!(?evicted, group, "earlier instances removed from the consumer group");
        }
        Err(e) => tracing::warn!(error = %e, group,
            "cannot remove earlier instances from the consumer group; their partitions move when their sessions time out"),
    }
}
