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

/// Runs the scheduler until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let infra = Infra::start(
        "scheduler",
        &config,
        &config.scheduler.ops_listen,
        10_000,
        metric_definitions::describe,
        &shutdown,
    )
    .await?;
    tracing::info!(ops = %infra.ops, "scheduler ready");
    let timers =
        timers::run(config.clone(), infra.store.clone(), infra.producer.clone(), infra.id.clone(), shutdown.clone());
    let timer_loop = tokio::spawn(timers);
    let result = tiers::run(&config, &infra.id, &infra.producer, &infra.readiness, &shutdown).await;
    infra.readiness.set_draining();
    let grace = Duration::from_millis(config.scheduler.drain_grace_ms);
    baton_telemetry::shutdown::bounded_drain("timer loop", grace, async {
        let _ = timer_loop.await;
    })
    .await;
    infra.stop(grace);
    result
}
