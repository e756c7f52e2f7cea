//! The scheduler service: owns delayed work (retry tiers, timers). Today it connects to Redis
//! and the broker, reports readiness and drains on SIGTERM.

use std::time::Duration;

use baton_config::Config;
use baton_telemetry::Readiness;
use tokio_util::sync::CancellationToken;

/// Runs the scheduler until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let readiness = Readiness::new(10_000);
    let ops_stop = CancellationToken::new();
    let ops = baton_telemetry::ops::serve(&config.scheduler.ops_listen, readiness.clone(), ops_stop.clone()).await?;
    let store = baton_store::Store::new(&config.redis)?;
    let producer = baton_bus::Producer::new(&config.kafka, &baton_service::instance_id("scheduler"))?;
    baton_service::spawn_probes(readiness.clone(), store, producer.clone(), ops_stop.clone());
    baton_service::ensure_topics(&config, &shutdown).await?;
    tracing::info!(ops = %ops, "scheduler ready");
    loop {
        readiness.tick();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    readiness.set_draining();
    producer.flush(Duration::from_millis(config.scheduler.drain_grace_ms));
    ops_stop.cancel();
    Ok(())
}
