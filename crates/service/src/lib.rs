//! Service scaffolding shared by gateway, worker, scheduler and reaper: [`main`] turns a
//! `run(config, shutdown)` function into a binary, [`Infra`] starts and stops what every
//! service shares, [`spawn_probes`] keeps readiness current, [`control`] stops and resumes runs
//! from outside the worker pipeline, [`tools`] holds the live tool catalog and [`switches`] the
//! operator switches.

pub mod control;
mod infra;
pub mod metric_definitions;
pub mod redaction;
mod route;
pub mod shards;
pub mod switches;
pub mod tools;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use baton_config::{Config, ConfigArgs};
use baton_telemetry::Readiness;
use clap::Parser;
use tokio_util::sync::CancellationToken;

pub use infra::Infra;

/// Exit code for a config that cannot be loaded or is invalid.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure to set up telemetry or the runtime.
pub const EXIT_SETUP: u8 = 3;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
}

/// The whole `main` of a service: flags → config (exit 2 on error, `--dump-config`) →
/// telemetry → `run(config, shutdown)` with SIGTERM/SIGINT as the shutdown signal.
pub fn main<F, Fut>(service: &'static str, run: F) -> ExitCode
where
    F: FnOnce(Config, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let cli = Cli::parse();
    let config = match baton_config::load(&cli.config.sources()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("baton-{service}: invalid config: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !config.tools.manifest.is_empty() {
        // A manifest that cannot be used stops the service like any other bad config.
        if let Err(e) = baton_config::manifest::load_manifest(std::path::Path::new(&config.tools.manifest)) {
            eprintln!("baton-{service}: invalid config: tools.manifest: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if cli.config.dump_config {
        print!("{}", baton_config::dump(&config));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton-{service}: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    runtime.block_on(async move {
        let _guard =
            match baton_telemetry::logs::init(service, &config.telemetry.log_level, &config.telemetry.log_format) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("baton-{service}: cannot set up telemetry: {e}");
                    return ExitCode::from(EXIT_SETUP);
                }
            };
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
        let shutdown = baton_telemetry::shutdown::on_signal();
        match run(config, shutdown).await {
            Ok(()) => {
                tracing::info!(service, "stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service, error = format!("{e:#}"), "failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// Probes, every five seconds until `stop`, what the service's work goes through: a PING
/// through its own Redis pool (a pool with no connection free is named as such: the request
/// path is starved), a metadata request through its producer's client, and the producer's
/// latest deliveries; records the findings in `readiness`. Exports readiness and the stalest
/// loop's tick age every second.
fn spawn_probes(
    readiness: Readiness,
    store: baton_store::Store,
    producer: baton_bus::Producer,
    stop: CancellationToken,
) {
    use baton_telemetry::readiness::{KAFKA, PRODUCER, REDIS};
    let gauges = readiness.clone();
    let gauges_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            metrics::gauge!(metric_definitions::READY).set(if gauges.problems().is_empty() { 1.0 } else { 0.0 });
            metrics::gauge!(metric_definitions::LOOP_TICK_AGE).set(gauges.loop_tick_age_ms().max(0) as f64 / 1000.0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = gauges_stop.cancelled() => return,
            }
        }
    });
    tokio::spawn(async move {
        loop {
            readiness.set_problem(REDIS, store.ping().await.err().map(|e| redis_problem(&e)));
            let answered = producer.probe(Duration::from_secs(2)).await;
            readiness.set_problem(KAFKA, (!answered).then(|| "kafka unreachable".to_string()));
            readiness.set_problem(PRODUCER, producer.delivery_problem());
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

/// Words for a failed Redis probe.
fn redis_problem(e: &baton_store::Error) -> String {
    if e.is_pool_exhausted() {
        return "redis pool exhausted: no connection came free in time".to_string();
    }
    format!("redis unreachable: {e}")
}

/// Creates the fleet's topics, retrying every second until it works or `shutdown` fires.
async fn ensure_topics(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<()> {
    loop {
        // An unreachable broker can hold one attempt for a minute: SIGTERM must not wait for it.
        let attempt =
            baton_bus::admin::ensure_topics(&config.kafka, &config.runs.lanes, &config.scheduler.retry_tiers_ms);
        let result = tokio::select! {
            r = attempt => r,
            _ = shutdown.cancelled() => anyhow::bail!("shut down before topics could be created"),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) => tracing::warn!(error = %e, "cannot create topics yet, retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => anyhow::bail!("shut down before topics could be created"),
        }
    }
}

/// A process-unique identity for a service instance: `<service>-<pid>-<random>`, or with a
/// stable name `<name>@<pid>-<random>` (every instance of a name shares [`named_prefix`]).
fn instance_id(service: &str, name: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let (pid, random) = (std::process::id(), nanos & 0xfffff);
    if name.is_empty() {
        format!("{service}-{pid}-{random:05x}")
    } else {
        format!("{}{pid}-{random:05x}", named_prefix(name))
    }
}

/// How the instance ids of every instance named `name` begin.
pub fn named_prefix(name: &str) -> String {
    format!("{name}@")
}
