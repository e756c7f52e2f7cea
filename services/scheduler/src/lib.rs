//! The scheduler service owns delayed work: the retry tier topics ([`tiers`]), which it
//! re-publishes to each run's lane when due without ever sleeping per message, and the timers
//! index ([`timers`]), which wakes waiting runs. Several schedulers run at once: the retry tiers'
//! partitions are shared by their consumer group, the timer index's shards by leases.

pub mod metric_definitions;
mod tiers;
mod timers;

use std::time::Duration;

use baton_config::Config;
use baton_service::Infra;
use tokio_util::sync::CancellationToken;

/// A loop counts as stuck after this long without going round (beyond its own interval).
const LOOP_STALE_MS: i64 = 10_000;

/// Runs the scheduler until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let infra =
        Infra::start("scheduler", &config, &config.scheduler.ops_listen, 0, metric_definitions::describe, &shutdown)
            .await?;
    tracing::info!(ops = %infra.ops, "scheduler ready");
    // Readiness watches both loops: the timer sweep by when it last completed a sweep (it sleeps
    // up to `scheduler.timer_max_interval_ms` between sweeps), the retry tiers by each round.
    let swept =
        infra.readiness.watch_loop("timer sweep", config.scheduler.timer_max_interval_ms as i64 + LOOP_STALE_MS);
    let tiers_ticker = infra.readiness.watch_loop("retry tiers loop", LOOP_STALE_MS);
    infra.readiness.set_started();
    let timers = timers::run(
        config.clone(),
        infra.store.clone(),
        infra.producer.clone(),
        infra.id.clone(),
        swept,
        shutdown.clone(),
    );
    let timer_loop = tokio::spawn(timers);
    let result = tiers::run(&config, &infra.id, &infra.producer, &tiers_ticker, &shutdown).await;
    infra.readiness.set_draining();
    let grace = Duration::from_millis(config.scheduler.drain_grace_ms);
    baton_telemetry::shutdown::bounded_drain("timer loop", grace, async {
        let _ = timer_loop.await;
    })
    .await;
    infra.stop(grace);
    result
}
