//! The reaper service. Recovery is one rule (DESIGN §5): an `inflight` entry past its due time
//! whose lease is gone is re-dispatched from the run's checkpoint. The loop is a sweeper: it
//! sleeps until the next entry is due or a bounded interval passes.

use std::time::Duration;

use baton_config::Config;
use baton_core::status::is_terminal;
use baton_proto::v1::{RunStatus, Task, TaskKind};
use baton_store::Store;
use baton_telemetry::{now_ms, Readiness};
use tokio_util::sync::CancellationToken;

/// Runs the reaper until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let readiness = Readiness::new(10_000 + config.reaper.max_interval_ms as i64);
    let ops_stop = CancellationToken::new();
    let ops = baton_telemetry::ops::serve(&config.reaper.ops_listen, readiness.clone(), ops_stop.clone()).await?;
    let store = Store::new(&config.redis)?;
    let producer = baton_bus::Producer::new(&config.kafka, &baton_service::instance_id("reaper"))?;
    baton_service::spawn_probes(readiness.clone(), store.clone(), producer.clone(), ops_stop.clone());
    baton_service::ensure_topics(&config, &shutdown).await?;
    tracing::info!(ops = %ops, "reaper ready");
    let max_interval = config.reaper.max_interval_ms as i64;
    loop {
        readiness.tick();
        let wait_ms = match sweep(&config, &store, &producer).await {
            Ok(next_due) => next_due.map_or(max_interval, |due| (due - now_ms()).clamp(10, max_interval)),
            Err(e) => {
                tracing::warn!(error = %e, "sweep failed");
                max_interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    readiness.set_draining();
    producer.flush(Duration::from_millis(config.reaper.drain_grace_ms));
    ops_stop.cancel();
    Ok(())
}

/// Handles every due entry (up to the batch size); returns the next due time.
async fn sweep(config: &Config, store: &Store, producer: &baton_bus::Producer) -> anyhow::Result<Option<i64>> {
    let due = store.inflight_due(now_ms(), config.reaper.batch).await?;
    for (run_id, _) in &due {
        if let Err(e) = reap(config, store, producer, run_id).await {
            tracing::warn!(run_id = %run_id, error = %e, "cannot recover run yet");
        }
    }
    if due.len() >= config.reaper.batch {
        return Ok(Some(now_ms()));
    }
    Ok(store.inflight_next_due().await?)
}

/// Re-checks one due run against its own keys and recovers it if it was abandoned.
async fn reap(config: &Config, store: &Store, producer: &baton_bus::Producer, run_id: &str) -> anyhow::Result<()> {
    let Some(state) = store.load_run(run_id).await? else {
        store.inflight_drop(run_id).await?;
        return Ok(());
    };
    if is_terminal(state.status()) || state.status() == RunStatus::Waiting {
        store.inflight_drop(run_id).await?;
        return Ok(());
    }
    if let Some(left) = store.lease_remaining_ms(run_id).await? {
        // Still owned: look again when the lease would expire.
        store.inflight_set(run_id, now_ms() + left.max(1)).await?;
        return Ok(());
    }
    let task = Task {
        run_id: run_id.to_string(),
        step: state.next_step,
        attempt: state.attempt,
        kind: TaskKind::Advance as i32,
        lane: state.lane.clone(),
        not_before_ms: 0,
        tenant: state.tenant.clone(),
    };
    // Look again after the dispatch grace in case this task is lost too; the claim clears it.
    store.inflight_set(run_id, now_ms() + config.runs.dispatch_grace_ms as i64).await?;
    producer.send_task(&task).await?;
    metrics::counter!("baton_reaper_redispatched_total").increment(1);
    tracing::info!(run_id, step = task.step, attempt = task.attempt, "abandoned step re-dispatched");
    Ok(())
}
