//! A worker restarted under its stable name (`worker.name`, e.g. the pod name) takes over from
//! the instance it replaces, which was killed or crashed and so never left: every registered
//! worker of that name but this one is declared dead at once (the reaper's next failover sweep
//! breaks its leases and re-dispatches its runs), and its partitions are taken at this worker's
//! first partition refresh instead of after their leases lapse ([`crate::partitions`]). A worker
//! without a name has nothing to take over: a dead one is found by its missing beats and its
//! partitions move when their leases lapse.

use crate::Worker;

/// Declares this worker's earlier instances dead. Returns the id prefix they share with this
/// one, for the partitions to be taken from them (`None` for a worker without a name).
pub async fn take_over(worker: &Worker) -> Option<String> {
    let cfg = &worker.config;
    if cfg.worker.name.is_empty() {
        return None;
    }
    let prefix = baton_service::named_prefix(&cfg.worker.name);
    let earlier = match worker.store.workers_with_prefix(&prefix).await {
        Ok(ids) => ids.into_iter().filter(|id| *id != worker.id).collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for earlier instances of this worker");
            Vec::new()
        }
    };
    for id in &earlier {
        match worker.store.worker_declare_dead(id).await {
            Ok(()) => {
                metrics::counter!(crate::metric_definitions::PREDECESSORS_TAKEN_OVER).increment(1);
                tracing::warn!(earlier = %id, "an earlier instance of this worker is declared dead");
            }
            Err(e) => tracing::warn!(earlier = %id, error = %e, "cannot declare an earlier instance dead"),
        }
    }
    Some(prefix)
}
