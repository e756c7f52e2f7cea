//! The ops HTTP endpoint of every service: `/healthz` (alive), `/readyz` (ready for work) and
//! `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::Readiness;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets of every `*_seconds` histogram: from a quarter of a millisecond (a step of a long
/// run, docs/benchmarks.md) to five minutes (a slow model or tool call).
pub const SECONDS_BUCKETS: &[f64] =
    &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Buckets of every `*_steps` histogram (steps per slice: 1 up to `worker.slice_max_steps`).
pub const STEPS_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Buckets of every `*_bytes` histogram: 1 KiB to 16 MiB, by fours.
pub const BYTES_BUCKETS: &[f64] =
    &[1024.0, 4096.0, 16384.0, 65536.0, 262_144.0, 1_048_576.0, 4_194_304.0, 16_777_216.0];

/// Installs the process-wide Prometheus recorder (once; later calls reuse it). Histograms are
/// exported as Prometheus histograms (buckets), so they aggregate across instances.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_steps".into()), STEPS_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    tracing::error!(error = %e, "histogram buckets rejected; latencies are exported as summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            // A second install (several services in one test process) keeps the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(Clone)]
struct Ops {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// Binds `addr` and serves the ops endpoint until `shutdown` fires. Returns the bound address.
pub async fn serve(addr: &str, readiness: Readiness, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("ops listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Ops { readiness, metrics: prometheus() });
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = server.await {
            tracing::error!(error = %e, "ops endpoint failed");
        }
    });
    Ok(bound)
}

async fn readyz(State(ops): State<Ops>) -> (StatusCode, String) {
    let problems = ops.readiness.problems();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", problems.join(", ")))
    }
}

async fn metrics_text(State(ops): State<Ops>) -> String {
    ops.metrics.render()
}
