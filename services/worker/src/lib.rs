//! The worker service: consumes `baton.tasks.<lane>` in the lane's consumer group, claims each
//! task's step in Redis, and runs claimed steps concurrently (bounded) through [`pipeline`].

mod consume;
mod hand_on;
mod heartbeat;
mod ledger;
pub mod metric_definitions;
mod owners;
mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use baton_config::Config;
use baton_runtime::{ScriptPlanner, StepLimits, ToolRegistry};
use baton_telemetry::Readiness;
use tokio_util::sync::CancellationToken;

/// Everything a step needs, shared by the worker's concurrent steps.
pub(crate) struct Worker {
    pub id: String,
    pub config: Config,
    pub store: baton_store::Store,
    pub producer: baton_bus::Producer,
    pub tools: ToolRegistry,
    pub planner: ScriptPlanner,
    pub limits: StepLimits,
}

/// Runs a worker until `shutdown` fires, then drains within `worker.drain_grace_ms`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let id = baton_service::instance_id("worker");
    let readiness = Readiness::new(10_000);
    let ops_stop = CancellationToken::new();
    let ops = baton_telemetry::ops::serve(&config.worker.ops_listen, readiness.clone(), ops_stop.clone()).await?;
    metric_definitions::describe();
    baton_bus::metric_definitions::describe();
    let store = baton_store::Store::new(&config.redis)?;
    let producer = baton_bus::Producer::new(&config.kafka, &id)?;
    baton_service::spawn_probes(readiness.clone(), store.clone(), producer.clone(), ops_stop.clone());
    baton_service::ensure_topics(&config, &shutdown).await?;
    tracing::info!(worker = %id, lane = %config.worker.lane, ops = %ops, concurrency = config.worker.concurrency, "worker ready");
    let limits = StepLimits {
        step_timeout: Duration::from_millis(config.worker.step_timeout_ms),
        max_output_bytes: config.worker.max_output_bytes,
    };
    let worker = Arc::new(Worker {
        tools: tools(&store, &id),
        id,
        store,
        producer: producer.clone(),
        planner: ScriptPlanner,
        limits,
        config,
    });
    let result = consume::consume(worker.clone(), readiness, shutdown).await;
    producer.flush(Duration::from_secs(5));
    ops_stop.cancel();
    result
}

fn tools(store: &baton_store::Store, worker: &str) -> ToolRegistry {
    let mut tools = ToolRegistry::builtins();
    tools.register("ledger", Arc::new(ledger::Ledger { store: store.clone(), worker: worker.to_string() }));
    tools
}
