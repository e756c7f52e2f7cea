//! Recovery of abandoned work: a due `inflight` entry is re-checked against the run's own
//! keys. If nobody holds the run, its events not yet confirmed on Kafka are re-published from
//! its Redis stream first (at least once, in order); then a live run that is not waiting has
//! its current step re-dispatched (unless an operator paused its lane), and any other entry is
//! dropped.

use baton_core::status::is_terminal;
use baton_proto::v1::RunStatus;
use baton_store::Index;
use baton_telemetry::now_ms;

use crate::Reaper;

/// Re-checks one in-flight entry and recovers the run if it was abandoned.
pub async fn recover(reaper: &Reaper, run_id: &str) -> anyhow::Result<()> {
    let store = &reaper.store;
    let Some(state) = store.load_run(run_id).await? else {
        store.index_drop_all(run_id).await?;
        return Ok(());
    };
    if let Some(left) = store.lease_remaining_ms(run_id).await? {
        // Still owned: look again when the lease would expire.
        store.index_set(Index::Inflight, run_id, now_ms() + left.max(1)).await?;
        return Ok(());
    }
    let unpublished = store.unpublished_events(run_id).await?;
    if let Some(last) = unpublished.last().map(|e| e.seq) {
        reaper.producer.send_events(&unpublished).await?;
        store.mark_published(run_id, last).await?;
        metrics::counter!(crate::metric_definitions::REPUBLISHED).increment(unpublished.len() as u64);
        tracing::info!(run_id, events = unpublished.len(), "unconfirmed events re-published");
    }
    if is_terminal(state.status()) || state.status() == RunStatus::Waiting {
        store.index_drop(Index::Inflight, run_id).await?;
        return Ok(());
    }
    if reaper.switches.lane_paused(&state.lane) {
        // Its task waits on the paused lane's topic; look again after the grace.
        store.index_set(Index::Inflight, run_id, now_ms() + reaper.config.runs.dispatch_grace_ms as i64).await?;
        return Ok(());
    }
    let task = baton_core::current_task(&state);
    // Look again after the dispatch grace in case this task is lost too; the claim clears it.
    store.index_set(Index::Inflight, run_id, now_ms() + reaper.config.runs.dispatch_grace_ms as i64).await?;
    // The producer routes it to a partition a live worker owns.
    reaper.producer.send_task(&task).await?;
    metrics::counter!(crate::metric_definitions::REDISPATCHED).increment(1);
    tracing::info!(run_id, step = task.step, attempt = task.attempt, "abandoned step re-dispatched");
    Ok(())
}
