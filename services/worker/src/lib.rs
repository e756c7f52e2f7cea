//! The worker service: consumes its share of `baton.tasks.<lane>`'s partitions ([`partitions`]),
//! claims each task's step in Redis, and runs claimed steps concurrently (bounded) through
//! [`pipeline`].

mod breakers;
mod consume;
mod hand_on;
mod heartbeat;
mod ledger;
pub mod metric_definitions;
mod offsets;
mod partitions;
mod permits;
mod pipeline;
mod restart;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_config::Config;
use baton_core::catalog::Catalog;
use baton_core::judge::Rule;
use baton_runtime::{Planners, StepLimits, ToolRegistry};
use baton_service::switches::LiveSwitches;
use baton_service::tools::LiveTools;
use baton_service::Infra;
use tokio_util::sync::CancellationToken;

/// Everything a step needs, shared by the worker's concurrent steps.
pub(crate) struct Worker {
    pub id: String,
    pub config: Config,
    pub store: baton_store::Store,
    pub producer: baton_bus::Producer,
    pub planners: Planners,
    pub rules: Vec<Rule>,
    pub limits: StepLimits,
    /// The tool catalog in force (reloaded without a restart).
    pub catalog: Arc<LiveTools>,
    /// Operator switches in force (re-read every `switches.refresh_ms`).
    pub switches: Arc<LiveSwitches>,
    /// Approval settings.
    pub approvals: baton_core::approval::ApprovalPolicy,
    /// The fleet's circuit breakers.
    pub breakers: breakers::FleetBreakers,
    /// Built-in tool adapters (`ledger` included).
    builtins: ToolRegistry,
    http: reqwest::Client,
    /// Adapters of the catalog in force, rebuilt when its version changes.
    adapters: Mutex<(String, Arc<ToolRegistry>)>,
    /// Fired when the worker starts draining: slices end at their next step boundary.
    pub draining: CancellationToken,
}

impl Worker {
    /// The catalog in force and the adapters that call its tools.
    pub fn tools(&self) -> (Arc<Catalog>, Arc<ToolRegistry>) {
        let catalog = self.catalog.catalog();
        let mut adapters = self.adapters.lock().unwrap_or_else(|e| e.into_inner());
        if adapters.0 != catalog.version() {
            let registry = ToolRegistry::with_catalog(&self.builtins, &catalog, &self.http);
            *adapters = (catalog.version().to_string(), Arc::new(registry));
        }
        (catalog, adapters.1.clone())
    }
}

/// Beats into the worker registry every third of `worker.liveness_ttl_ms` until `stop`: a worker
/// that stops beating is dead, and the reaper recovers its runs at once. The beat has a Redis
/// connection of its own, so it never waits behind steps for a pooled one, and is stamped with
/// the Redis server's clock, so this host's clock does not matter.
fn spawn_liveness(worker: &Arc<Worker>, stop: CancellationToken) -> anyhow::Result<()> {
    let own = baton_config::Redis { pool_size: 1, ..worker.config.redis.clone() };
    let (store, id) = (baton_store::Store::new(&own)?, worker.id.clone());
    let every = Duration::from_millis((worker.config.worker.liveness_ttl_ms / 3).max(100));
    tokio::spawn(async move {
        loop {
            if let Err(e) = store.worker_beat(&id).await {
                tracing::warn!(error = %e, "cannot record liveness");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
    Ok(())
}

/// Runs a worker until `shutdown` fires, then drains within `worker.drain_grace_ms`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let catalog = LiveTools::open(&config.tools)?;
    let infra =
        Infra::start("worker", &config, &config.worker.ops_listen, 0, metric_definitions::describe, &shutdown).await?;
    let id = infra.id.clone();
    tracing::info!(worker = %id, lane = %config.worker.lane, ops = %infra.ops, concurrency = config.worker.concurrency,
        tools = catalog.catalog().version(), "worker ready");
    let every = Duration::from_millis(config.tools.reload_interval_ms);
    catalog.spawn_watch(infra.store.clone(), every, id.clone(), infra.stopping());
    let limits = StepLimits {
        step_timeout: Duration::from_millis(config.worker.step_timeout_ms),
        max_output_bytes: config.worker.max_output_bytes,
        max_args_bytes: config.runs.max_args_bytes,
        held_retry: Duration::from_millis(config.switches.held_retry_ms),
    };
    let switches =
        LiveSwitches::start(infra.store.clone(), Duration::from_millis(config.switches.refresh_ms), infra.stopping())
            .await;
    let http = baton_runtime::http::client();
    let mut builtins = ToolRegistry::builtins();
    let ledger = ledger::Ledger {
        store: infra.store.clone(),
        worker: id.clone(),
        ttl_ms: config.runs.retention_ms() + config.worker.step_timeout_ms,
    };
    builtins.register("ledger", Arc::new(ledger));
    let worker = Arc::new(Worker {
        planners: Planners::from_config(&config, &http).map_err(anyhow::Error::msg)?,
        rules: config.policy.rules(),
        id,
        store: infra.store.clone(),
        producer: infra.producer.clone(),
        limits,
        catalog,
        switches,
        approvals: config.approvals.policy(),
        breakers: breakers::FleetBreakers::new(infra.store.clone(), &config, &infra.id),
        builtins,
        http,
        adapters: Mutex::new((String::new(), Arc::new(ToolRegistry::default()))),
        draining: shutdown.clone(),
        config,
    });
    let earlier = restart::take_over(&worker).await;
    spawn_liveness(&worker, infra.stopping())?;
    let result = consume::consume(worker.clone(), infra.readiness.clone(), shutdown, earlier).await;
    if let Err(e) = worker.store.worker_gone(&worker.id).await {
        tracing::warn!(error = %e, "cannot leave the worker registry; the reaper will");
    }
    infra.stop(Duration::from_secs(5));
    result
}
