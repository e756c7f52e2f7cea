//! What every service starts before its own work, and stops after it: readiness and the ops
//! endpoint, metric descriptions, the Redis pool, the Kafka producer, dependency probes, and
//! the fleet's topics.

use std::net::SocketAddr;
use std::time::Duration;

use baton_config::Config;
use baton_telemetry::Readiness;
use tokio_util::sync::CancellationToken;

/// A service's connections and health reporting.
pub struct Infra {
    /// This instance's identity, `<service>-<pid>-<random>` (a named worker:
    /// `<name>@<pid>-<random>`).
    pub id: String,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Bound address of the ops endpoint.
    pub ops: SocketAddr,
    /// The Redis pool.
    pub store: baton_store::Store,
    /// The Kafka producer.
    pub producer: baton_bus::Producer,
    ops_stop: CancellationToken,
}

impl Infra {
    /// Serves `/healthz`, `/readyz` and `/metrics` on `ops_listen` (with `loop_stale_ms` above 0,
    /// a "main loop" counts as stuck after that long without [`Readiness::tick`]; services name
    /// their loops with [`Readiness::watch_loop`] instead), registers the crate's metric
    /// descriptions, connects, and creates the topics (retrying until `shutdown`).
    pub async fn start(
        service: &str,
        config: &Config,
        ops_listen: &str,
        loop_stale_ms: i64,
        describe_metrics: fn(),
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        // Only workers have a stable name (`worker.name`): what a restart takes over from.
        let name = if service == "worker" { config.worker.name.as_str() } else { "" };
        let id = crate::instance_id(service, name);
        let readiness = Readiness::new(loop_stale_ms);
        let ops_stop = CancellationToken::new();
        let ops = baton_telemetry::ops::serve(ops_listen, readiness.clone(), ops_stop.clone()).await?;
        describe_metrics();
        baton_bus::metric_definitions::describe();
        crate::metric_definitions::describe();
        crate::metric_definitions::set_build_info(service);
        let redaction = std::sync::Arc::new(crate::redaction::redaction(config));
        let store = baton_store::Store::new(&config.redis)?.with_redaction(redaction.clone());
        let mut producer = baton_bus::Producer::new(&config.kafka, &id)?;
        producer.set_redaction(redaction);
        let waker = store.clone();
        producer.set_wake(std::sync::Arc::new(move |topic: String| {
            let store = waker.clone();
            tokio::spawn(async move {
                if let Err(e) = store.wake(&topic).await {
                    tracing::debug!(error = %e, topic, "cannot publish a wake-up (idle consumers recheck by themselves)");
                }
            });
        }));
        producer.set_route(crate::route::spawn(config, store.clone(), ops_stop.clone()));
        crate::spawn_probes(readiness.clone(), store.clone(), producer.clone(), ops_stop.clone());
        crate::ensure_topics(config, shutdown).await?;
        Ok(Self { id, readiness, ops, store, producer, ops_stop })
    }

    /// A token cancelled by [`Infra::stop`], for helper tasks that live as long as the service.
    pub fn stopping(&self) -> CancellationToken {
        self.ops_stop.clone()
    }

    /// End of the drain: readiness off, queued records flushed within `grace`, ops endpoint down.
    pub fn stop(&self, grace: Duration) {
        self.readiness.set_draining();
        self.producer.flush(grace);
        self.ops_stop.cancel();
    }
}
