//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// Abandoned steps re-dispatched from their checkpoint.
pub const REDISPATCHED: &str = "baton_reaper_redispatched_total";

/// Runs ended at their deadline by the reaper.
pub const TIMED_OUT: &str = "baton_reaper_timed_out_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(REDISPATCHED, Unit::Count, "Abandoned steps re-dispatched from their checkpoint.");
    describe_counter!(TIMED_OUT, Unit::Count, "Runs ended at their deadline by the reaper.");
}
