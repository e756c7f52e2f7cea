//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, describe_histogram, Unit};

/// Retries re-published to their lane, by tier topic.
pub const RETRIES_RELEASED: &str = "baton_scheduler_retries_released_total";

/// Release time minus not-before time of a retry.
pub const RETRY_LATENESS: &str = "baton_scheduler_retry_lateness_seconds";

/// Waiting runs woken by their timer.
pub const TIMERS_FIRED: &str = "baton_scheduler_timers_fired_total";

/// Registers the descriptions with the installed recorder, and the label-free series with zeros.
pub fn describe() {
    describe_counter!(RETRIES_RELEASED, Unit::Count, "Retries re-published to their lane, by tier topic.");
    describe_histogram!(RETRY_LATENESS, Unit::Seconds, "Release time minus not-before time of a retry.");
    describe_counter!(
        TIMERS_FIRED,
        Unit::Count,
        "Timers fired, by kind: timer (a sleep ended) or approval (a request expired and was denied or escalated)."
    );
    for kind in ["timer", "approval"] {
        metrics::counter!(TIMERS_FIRED, "kind" => kind).absolute(0);
    }
}
