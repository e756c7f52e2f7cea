//! The scheduler service owns delayed work: the retry tier topics ([`tiers`]), which it
//! re-publishes to each run's lane when due without ever sleeping per message, and the timers
//! index ([`timers`]), which wakes waiting runs.

pub mod metric_definitions;
mod tiers;
mod timers;

use std::time::Duration;

use baton_config::Config;
use baton_telemetry::Readiness;
use tokio_util::sync::CancellationToken;

/// Runs the scheduler until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let readiness = Readiness::new(10_000);
    let ops_stop = CancellationToken::new();
    let ops = baton_telemetry::ops::serve(&config.scheduler.ops_listen, readiness.clone(), ops_stop.clone()).await?;
    metric_definitions::describe();
    baton_bus::metric_definitions::describe();
    let id = baton_service::instance_id("scheduler");
    let store = baton_store::Store::new(&config.redis)?;
    let producer = baton_bus::Producer::new(&config.kafka, &id)?;
    baton_service::spawn_probes(readiness.clone(), store.clone(), producer.clone(), ops_stop.clone());
    baton_service::ensure_topics(&config, &shutdown).await?;
    tracing::info!(ops = %ops, "scheduler ready");
    let timer_loop = tokio::spawn(timers::run(config.clone(), store, producer.clone(), shutdown.clone()));
    let result = tiers::run(&config, &id, &producer, &readiness, &shutdown).await;
    readiness.set_draining();
    let grace = Duration::from_millis(config.scheduler.drain_grace_ms);
    baton_telemetry::shutdown::bounded_drain("timer loop", grace, async {
        let _ = timer_loop.await;
    })
    .await;
    producer.flush(Duration::from_millis(config.scheduler.drain_grace_ms));
    ops_stop.cancel();
    result
}
