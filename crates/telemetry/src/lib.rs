//! Telemetry every service shares: JSON logs and OTLP traces ([`logs`]), the Prometheus
//! recorder and ops endpoint ([`ops`]), readiness ([`Readiness`]) and the shutdown signal
//! ([`shutdown`]).

pub mod logs;
pub mod ops;
pub mod readiness;
pub mod shutdown;
pub mod trace;

pub use readiness::{LoopTicker, Readiness};

/// Milliseconds since the Unix epoch, the one clock the fleet stamps records with.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
