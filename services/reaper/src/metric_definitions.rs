//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// Abandoned steps re-dispatched from their checkpoint.
pub const REDISPATCHED: &str = "baton_reaper_redispatched_total";

/// Events re-published to Kafka from a run's Redis stream (their first delivery was not confirmed).
pub const REPUBLISHED: &str = "baton_reaper_events_republished_total";

/// Leases of dead workers broken (their runs resume at once).
pub const LEASES_BROKEN: &str = "baton_reaper_leases_broken_total";

/// Workers found dead (stopped beating).
pub const DEAD_WORKERS: &str = "baton_reaper_dead_workers_total";

/// Runs ended at their deadline by the reaper.
pub const TIMED_OUT: &str = "baton_reaper_timed_out_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(REDISPATCHED, Unit::Count, "Abandoned steps re-dispatched from their checkpoint.");
    describe_counter!(REPUBLISHED, Unit::Count, "Events re-published to Kafka from a run's Redis stream.");
    describe_counter!(LEASES_BROKEN, Unit::Count, "Leases of dead workers broken (their runs resume at once).");
    describe_counter!(DEAD_WORKERS, Unit::Count, "Workers found dead (stopped beating).");
    describe_counter!(TIMED_OUT, Unit::Count, "Runs ended at their deadline by the reaper.");
}
