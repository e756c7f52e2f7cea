//! The timer sweeper: wakes waiting runs whose time has come — a sleep ends, or an approval
//! request expires (denied or escalated, per `[approvals]`). Shaped like mini-redis's
//! `purge_expired_tasks`: sleep until the next timer or a bounded interval, then handle what
//! is due, several runs at a time (half the Redis pool). Every entry is re-checked against the
//! run before acting.

use std::time::Duration;

use baton_core::machine::{wake, Next};
use baton_proto::v1::RunStatus;
use baton_service::control::Control;
use baton_service::shards::ShardShare;
use baton_store::{Index, Store};
use baton_telemetry::{now_ms, LoopTicker};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

/// Sweeps this scheduler's share of the timers index shards until `shutdown` (`member`: this
/// scheduler's id; several schedulers split the shards between them).
pub async fn run(
    config: baton_config::Config,
    store: Store,
    producer: baton_bus::Producer,
    member: String,
    swept: LoopTicker,
    shutdown: CancellationToken,
) {
    let max_interval = config.scheduler.timer_max_interval_ms as i64;
    let control = Control::new(&config, store.clone(), producer);
    let mut share = ShardShare::new(store.clone(), "scheduler", &member);
    loop {
        let mut next_due: Option<i64> = None;
        let mut all_swept = true;
        for shard in share.refresh().await {
            match sweep(&config, &store, &control, shard).await {
                Ok(Some(due)) => next_due = Some(next_due.map_or(due, |n| n.min(due))),
                Ok(None) => {}
                Err(e) => {
                    all_swept = false;
                    tracing::warn!(shard, error = %e, "timer sweep failed");
                }
            }
        }
        // Readiness: a sweep of every shard this scheduler holds completed.
        if all_swept {
            swept.tick();
        }
        let wait = next_due.map_or(max_interval, |due| (due - now_ms()).clamp(1, max_interval));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    share.release_all().await;
}

async fn sweep(
    config: &baton_config::Config,
    store: &Store,
    control: &Control,
    shard: u16,
) -> anyhow::Result<Option<i64>> {
    let due = store.index_due(Index::Timers, shard, now_ms(), config.scheduler.timer_batch).await?;
    // Runs are independent (each wake is a compare-and-set on its own run), so a batch wakes
    // concurrently: one at a time, a wake's round trips (Redis, then the broker's ack of the
    // task) capped a scheduler at a few hundred timers a second and made a burst fire late.
    futures::stream::iter(&due)
        // Half the pool: each wake holds a Redis connection at a time, the sweep needs the rest.
        .for_each_concurrent((config.redis.pool_size / 2).max(1), |(run_id, at)| async move {
            if let Err(e) = wake_one(config, store, control, run_id, *at).await {
                tracing::warn!(run_id = %run_id, error = %e, "cannot wake run yet");
            }
        })
        .await;
    if due.len() >= config.scheduler.timer_batch {
        return Ok(Some(now_ms()));
    }
    Ok(store.index_next_due(Index::Timers, shard).await?)
}

/// Wakes the run of the timer entry due `at`, if it still waits. Entries are removed only as
/// read (`at`): a run that started waiting again meanwhile keeps its fresh entry.
async fn wake_one(
    config: &baton_config::Config,
    store: &Store,
    control: &Control,
    run_id: &str,
    at: i64,
) -> anyhow::Result<()> {
    let Some(snapshot) = store.read_for_update(run_id).await? else {
        store.index_clear(Index::Timers, run_id, at).await?;
        return Ok(());
    };
    if snapshot.state.status() != RunStatus::Waiting {
        store.index_clear(Index::Timers, run_id, at).await?;
        return Ok(());
    }
    if snapshot.state.wake_at_ms > now_ms() {
        store.index_set(Index::Timers, run_id, snapshot.state.wake_at_ms).await?;
        return Ok(());
    }
    let state = snapshot.state.clone();
    let (t, kind) = match state.wait_reason.as_str() {
        baton_core::approval::WAIT_REASON => {
            (baton_core::approval::expire(state, &config.approvals.policy(), now_ms()), "approval")
        }
        baton_core::reconcile::WAIT_REASON => {
            // Waits for an operator, never for a clock.
            store.index_clear(Index::Timers, run_id, at).await?;
            return Ok(());
        }
        _ => (wake(state, now_ms()), "timer"),
    };
    let extra: Vec<(Index, i64)> = match t.next {
        Next::Wait { wake_at_ms } => vec![(Index::Timers, wake_at_ms)],
        _ => Vec::new(),
    };
    let Some(t) = control.resume(&snapshot, &t, &extra).await? else {
        // Claimed, cancelled or changed meanwhile: look again shortly.
        store.index_set(Index::Timers, run_id, now_ms() + 50).await?;
        return Ok(());
    };
    if !matches!(t.next, Next::Wait { .. }) {
        store.index_clear(Index::Timers, run_id, at).await?;
    }
    if kind == "approval" && baton_core::approval::waiting_on(&t.state).is_none() {
        store.approvals_drop(&t.state.tenant, run_id).await?;
    }
    metrics::counter!(crate::metric_definitions::TIMERS_FIRED, "kind" => kind).increment(1);
    tracing::info!(run_id, step = t.state.next_step, kind, "timer fired");
    Ok(())
}
