//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, describe_gauge, Unit};

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

/// Entries of run listings removed because their run ended or expired.
pub const LISTINGS_SWEPT: &str = "baton_reaper_listing_entries_swept_total";

/// Dead letters sent to the dead-letter topic by the reaper (their worker stopped before it could).
pub const DEAD_LETTERS_RESENT: &str = "baton_reaper_dead_letters_sent_total";

/// Fleet gauges, sampled from Redis about once a second by the reaper (run one reaper, or read
/// them from one): runs in flight (leased, or dispatched and not yet claimed).
pub const FLEET_IN_FLIGHT: &str = "baton_fleet_runs_in_flight";

/// How far past due the oldest in-flight entry is (a stuck queue or dead workers grow it).
pub const FLEET_INFLIGHT_OVERDUE: &str = "baton_fleet_inflight_overdue_seconds";

/// Runs waiting on a timer (a sleep, an approval's expiry).
pub const FLEET_TIMERS: &str = "baton_fleet_timers";

/// Timers due now or earlier (the scheduler falls behind if this stays above 0).
pub const FLEET_TIMERS_DUE: &str = "baton_fleet_timers_due";

/// Dead letters waiting for an operator (DLQ depth).
pub const FLEET_DEAD_LETTERS: &str = "baton_fleet_dead_letters";

/// Workers in the liveness registry.
pub const FLEET_WORKERS: &str = "baton_fleet_workers";

/// Operator switches in force (tools disabled or gated, lanes paused, tenant caps).
pub const FLEET_SWITCHES: &str = "baton_fleet_switches_in_force";

/// Runs waiting for a person's approval.
pub const FLEET_APPROVALS: &str = "baton_fleet_approvals_waiting";

/// Age of the oldest approval request still waiting.
pub const FLEET_OLDEST_APPROVAL: &str = "baton_fleet_oldest_approval_age_seconds";

/// Records on a lane's task topic partition that its worker group has not committed past
/// (log end offset minus committed offset), by lane and partition.
pub const LANE_LAG: &str = "baton_lane_consumer_lag";

/// Registers the descriptions with the installed recorder, and the series with zero values.
pub fn describe() {
    for (name, help) in [
        (FLEET_IN_FLIGHT, "Runs in flight: leased, or dispatched and not yet claimed."),
        (FLEET_TIMERS, "Runs waiting on a timer (a sleep, an approval's expiry)."),
        (FLEET_TIMERS_DUE, "Timers due now or earlier."),
        (FLEET_DEAD_LETTERS, "Dead letters waiting for an operator (DLQ depth)."),
        (FLEET_WORKERS, "Workers in the liveness registry."),
        (FLEET_SWITCHES, "Operator switches in force."),
        (FLEET_APPROVALS, "Runs waiting for a person's approval."),
    ] {
        describe_gauge!(name, help);
        metrics::gauge!(name).set(0.0);
    }
    describe_gauge!(FLEET_INFLIGHT_OVERDUE, Unit::Seconds, "How far past due the oldest in-flight entry is.");
    metrics::gauge!(FLEET_INFLIGHT_OVERDUE).set(0.0);
    describe_gauge!(FLEET_OLDEST_APPROVAL, Unit::Seconds, "Age of the oldest approval request still waiting.");
    metrics::gauge!(FLEET_OLDEST_APPROVAL).set(0.0);
    describe_gauge!(
        LANE_LAG,
        "Records on a lane's task partition its worker group has not committed past, by lane and partition."
    );
    for name in [REDISPATCHED, REPUBLISHED, LEASES_BROKEN, DEAD_WORKERS, TIMED_OUT, DEAD_LETTERS_RESENT, LISTINGS_SWEPT]
    {
        metrics::counter!(name).absolute(0);
    }
    describe_counter!(REDISPATCHED, Unit::Count, "Abandoned steps re-dispatched from their checkpoint.");
    describe_counter!(REPUBLISHED, Unit::Count, "Events re-published to Kafka from a run's Redis stream.");
    describe_counter!(LEASES_BROKEN, Unit::Count, "Leases of dead workers broken (their runs resume at once).");
    describe_counter!(DEAD_WORKERS, Unit::Count, "Workers found dead (stopped beating).");
    describe_counter!(TIMED_OUT, Unit::Count, "Runs ended at their deadline by the reaper.");
    describe_counter!(
        LISTINGS_SWEPT,
        Unit::Count,
        "Entries of run listings removed because their run ended or expired."
    );
    describe_counter!(
        DEAD_LETTERS_RESENT,
        Unit::Count,
        "Dead letters sent to the dead-letter topic by the reaper (their worker stopped before it could)."
    );
}
