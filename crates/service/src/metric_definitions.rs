//! Metric names of this crate, declared once, and their descriptions for `/metrics`. Every
//! service exports these: its own health, and the manifest it holds.

use metrics::{describe_counter, describe_gauge, Unit};

/// Tool manifest reloads, by result: loaded, rejected.
pub const MANIFEST_RELOADS: &str = "baton_tools_manifest_reloads_total";

/// 1 while the service is ready (`/readyz` answers 200), else 0.
pub const READY: &str = "baton_service_ready";

/// Seconds since the service's main loop last went round (a stuck loop grows it).
pub const LOOP_TICK_AGE: &str = "baton_service_loop_tick_age_seconds";

/// Registers the descriptions with the installed recorder, and the series with zero values.
pub fn describe() {
    describe_counter!(MANIFEST_RELOADS, Unit::Count, "Tool manifest reloads, by result: loaded, rejected.");
    describe_gauge!(READY, "1 while the service is ready (/readyz answers 200), else 0.");
    describe_gauge!(LOOP_TICK_AGE, Unit::Seconds, "Seconds since the service's main loop last went round.");
    for result in ["loaded", "rejected"] {
        metrics::counter!(MANIFEST_RELOADS, "result" => result).absolute(0);
    }
    metrics::gauge!(READY).set(0.0);
    metrics::gauge!(LOOP_TICK_AGE).set(0.0);
}
