//! The worker's side of the fleet's circuit breakers: asks Redis before each manifest-tool call
//! and reports failures and probe results (`[breakers]`). A breaker that cannot be read lets the
//! call through: Redis trouble must not stop tools that work.

use std::sync::atomic::{AtomicU64, Ordering};

use baton_runtime::{BoxFuture, Breakers, Gate};
use baton_store::{BreakerGate, BreakerLimits, Store};
use baton_telemetry::now_ms;

use crate::metric_definitions as m;

/// Slack on top of a tool's timeout before a silent probe is replaced.
const PROBE_MARGIN_MS: u64 = 1_000;

/// Breakers backed by Redis, shared by every worker.
pub struct FleetBreakers {
    store: Store,
    enabled: bool,
    limits: BreakerLimits,
    failures: AtomicU64,
    id: String,
}

impl FleetBreakers {
    /// Breakers as `[breakers]` configures them.
    pub fn new(store: Store, config: &baton_config::Config, worker: &str) -> Self {
        let b = &config.breakers;
        Self {
            store,
            enabled: b.enabled,
            limits: BreakerLimits { failures: b.failures, window_ms: b.window_ms, cooldown_ms: b.cooldown_ms },
            failures: AtomicU64::new(0),
            id: worker.to_string(),
        }
    }
}

/// 0 closed, 1 half open, 2 open (`baton_tool_breaker_state`).
fn level(state: &str) -> f64 {
    match state {
        "open" => 2.0,
        "half_open" => 1.0,
        _ => 0.0,
    }
}

impl Breakers for FleetBreakers {
    fn allow<'a>(&'a self, tool: &'a str, call_timeout_ms: u64) -> BoxFuture<'a, Gate> {
        Box::pin(async move {
            if !self.enabled {
                return Gate::Closed;
            }
            // A probe that never reports (its worker died) is replaced once it would have timed out.
            let probe_ms = call_timeout_ms + PROBE_MARGIN_MS;
            match self.store.breaker_allow(tool, now_ms(), probe_ms).await {
                Ok(BreakerGate::Closed) => Gate::Closed,
                Ok(BreakerGate::Probe) => {
                    metrics::gauge!(m::BREAKER_STATE, "tool" => tool.to_string()).set(1.0);
                    tracing::info!(tool, "circuit breaker half open: probing");
                    Gate::Probe
                }
                Ok(BreakerGate::Open(until)) => {
                    metrics::gauge!(m::BREAKER_STATE, "tool" => tool.to_string()).set(2.0);
                    metrics::counter!(m::BREAKER_REJECTIONS, "tool" => tool.to_string()).increment(1);
                    Gate::Open(until)
                }
                Ok(BreakerGate::Probing) => {
                    // Another worker's probe decides soon: held for the shortest retry tier.
                    metrics::counter!(m::BREAKER_REJECTIONS, "tool" => tool.to_string()).increment(1);
                    Gate::Open(now_ms())
                }
                Err(e) => {
                    tracing::warn!(tool, error = %e, "cannot read the circuit breaker; calling");
                    Gate::Closed
                }
            }
        })
    }

    fn record<'a>(&'a self, tool: &'a str, ok: bool) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.enabled {
                return;
            }
            let n = self.failures.fetch_add(1, Ordering::Relaxed);
            let failure_id = format!("{}:{n}", self.id);
            match self.store.breaker_record(tool, ok, now_ms(), self.limits, &failure_id).await {
                Ok(state) => {
                    metrics::gauge!(m::BREAKER_STATE, "tool" => tool.to_string()).set(level(&state));
                    if state == "open" && !ok {
                        tracing::warn!(tool, "circuit breaker open");
                    }
                }
                Err(e) => tracing::warn!(tool, error = %e, "cannot record the call in the circuit breaker"),
            }
        })
    }
}
