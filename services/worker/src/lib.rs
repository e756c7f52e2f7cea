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
use baton_service::Infra;
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
    let infra =
        Infra::start("worker", &config, &config.worker.ops_listen, 10_000, metric_definitions::describe, &shutdown)
            .await?;
    let id = infra.id.clone();
    tracing::info!(worker = %id, lane = %config.worker.lane, ops = %infra.ops, concurrency = config.worker.concurrency, "worker ready");
    let limits = StepLimits {
        step_timeout: Duration::from_millis(config.worker.step_timeout_ms),
        max_output_bytes: config.worker.max_output_bytes,
    };
    let worker = Arc::new(Worker {
        tools: tools(&infra.store, &id),
        id,
        store: infra.store.clone(),
        producer: infra.producer.clone(),
        planner: ScriptPlanner,
        limits,
        config,
    });
    let result = consume::consume(worker.clone(), infra.readiness.clone(), shutdown).await;
    infra.stop(Duration::from_secs(5));
    result
}

fn tools(store: &baton_store::Store, worker: &str) -> ToolRegistry {
    let mut tools = ToolRegistry::builtins();
    tools.register("ledger", Arc::new(ledger::Ledger { store: store.clone(), worker: worker.to_string() }));
    tools
}
