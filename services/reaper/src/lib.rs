//! The reaper service: a sweeper over two indexes and the worker registry. Recovery is one rule
//! (DESIGN §5): an `inflight` entry past its due time whose lease is gone is re-dispatched from
//! the run's checkpoint, after its unconfirmed events are re-published ([`recover`]); a dead
//! worker's leases are broken first so its runs need not wait for their TTL ([`failover`]).
//! Deadlines: a run past its wall-clock deadline ends `timed_out`, at once if no step is in
//! flight, else through the same stop flag as a cancel ([`deadline`]).
//! The loop sleeps until the next entry is due or a bounded interval passes. Several reapers run
//! at once: each sweeps its share of the index shards (`baton_service::shards`), and the one
//! holding shard 0 also does the fleet-wide jobs — dead workers' failover, the fleet gauges
//! sampled from Redis, the lanes' consumer lag from the broker ([`lag`]), and keeping the
//! listings of runs free of runs that ended or expired ([`listings`]).

mod deadline;
mod failover;
mod lag;
mod listings;
pub mod metric_definitions;
mod recover;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_config::Config;
use baton_service::shards::ShardShare;
use baton_service::Infra;
use baton_store::{Index, Store};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;

/// What a sweep needs.
pub(crate) struct Reaper {
    pub config: Config,
    pub store: Store,
    pub producer: baton_bus::Producer,
    /// Operator switches: a paused lane's runs are not re-dispatched.
    pub switches: std::sync::Arc<baton_service::switches::LiveSwitches>,
    /// Ends overdue runs nobody is executing.
    pub control: baton_service::control::Control,
}

/// Runs the reaper until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let stale_ms = 10_000 + config.reaper.max_interval_ms as i64;
    let infra =
        Infra::start("reaper", &config, &config.reaper.ops_listen, stale_ms, metric_definitions::describe, &shutdown)
            .await?;
    tracing::info!(ops = %infra.ops, "reaper ready");
    let every = Duration::from_millis(config.switches.refresh_ms);
    let switches = baton_service::switches::LiveSwitches::start(infra.store.clone(), every, infra.stopping()).await;
    // Fleet-wide jobs run in the reaper that leads (holds index shard 0).
    let leading = Arc::new(AtomicBool::new(false));
    tokio::spawn(lag::sample_lanes(config.clone(), infra.store.clone(), leading.clone(), infra.stopping()));
    let retention_ms = config.runs.retention_ms();
    tokio::spawn(listings::run(infra.store.clone(), retention_ms, leading.clone(), infra.stopping()));
    let control = baton_service::control::Control::new(&config, infra.store.clone(), infra.producer.clone());
    let reaper = Reaper { config, store: infra.store.clone(), producer: infra.producer.clone(), switches, control };
    let mut share = ShardShare::new(infra.store.clone(), "reaper", &infra.id);
    let max_interval = reaper.config.reaper.max_interval_ms as i64;
    let mut sampled = std::time::Instant::now() - Duration::from_secs(1);
    loop {
        infra.readiness.tick();
        let mut next_due = now_ms() + max_interval;
        let shards = share.refresh().await;
        leading.store(share.leads(), Ordering::Relaxed);
        if share.leads() {
            if sampled.elapsed() >= Duration::from_secs(1) {
                sample_fleet(&reaper).await;
                sampled = std::time::Instant::now();
            }
            if let Err(e) = failover::sweep(&reaper).await {
                tracing::warn!(error = %e, "failover sweep failed");
            }
        }
        for shard in shards {
            for (index, label) in [(Index::Inflight, "inflight"), (Index::Deadlines, "deadlines")] {
                match sweep(&reaper, index, shard).await {
                    Ok(Some(due)) => next_due = next_due.min(due),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(index = label, shard, error = %e, "sweep failed"),
                }
            }
        }
        let wait_ms = (next_due - now_ms()).clamp(10, max_interval);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    share.release_all().await;
    infra.stop(Duration::from_millis(reaper.config.reaper.drain_grace_ms));
    Ok(())
}

/// Exports the fleet gauges (`baton_fleet_*`) from one Redis sample.
async fn sample_fleet(reaper: &Reaper) {
    use metric_definitions as m;
    match reaper.store.fleet_sample(now_ms()).await {
        Ok(s) => {
            metrics::gauge!(m::FLEET_IN_FLIGHT).set(s.in_flight as f64);
            metrics::gauge!(m::FLEET_INFLIGHT_OVERDUE).set(s.inflight_overdue_ms as f64 / 1000.0);
            metrics::gauge!(m::FLEET_TIMERS).set(s.timers as f64);
            metrics::gauge!(m::FLEET_TIMERS_DUE).set(s.timers_due as f64);
            metrics::gauge!(m::FLEET_DEAD_LETTERS).set(s.dead_letters as f64);
            metrics::gauge!(m::FLEET_WORKERS).set(s.workers as f64);
            metrics::gauge!(m::FLEET_SWITCHES).set(s.switches as f64);
            metrics::gauge!(m::FLEET_APPROVALS).set(s.approvals as f64);
            metrics::gauge!(m::FLEET_OLDEST_APPROVAL).set(s.oldest_approval_ms as f64 / 1000.0);
            if let Some(run_id) = s.oldest_approval_run {
                // A cancelled or timed-out run leaves its listing behind: drop it, one per sample.
                match reaper.store.load_run(&run_id).await {
                    Ok(state) if baton_core::approval::listing_is_stale(state.as_ref()) => {
                        let tenant = state.map(|s| s.tenant).unwrap_or_default();
                        if let Err(e) = reaper.store.approvals_drop(&tenant, &run_id).await {
                            tracing::debug!(error = %e, "cannot drop a stale approval listing");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot check the oldest approval listing"),
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot sample the fleet gauges"),
    }
}

/// Handles every due entry of shard `shard` of `index` (up to the batch size); returns its next
/// due time.
async fn sweep(reaper: &Reaper, index: Index, shard: u16) -> anyhow::Result<Option<i64>> {
    let batch = reaper.config.reaper.batch;
    let due = reaper.store.index_due(index, shard, now_ms(), batch).await?;
    for (run_id, at) in &due {
        let result = match index {
            Index::Deadlines => deadline::enforce(reaper, run_id, *at).await,
            _ => recover::recover(reaper, run_id, Some(*at)).await,
        };
        if let Err(e) = result {
            tracing::warn!(run_id = %run_id, error = %e, "cannot handle due run yet");
        }
    }
    if due.len() >= batch {
        return Ok(Some(now_ms()));
    }
    Ok(reaper.store.index_next_due(index, shard).await?)
}
