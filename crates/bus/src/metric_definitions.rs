//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// Records acknowledged by the broker, by topic.
pub const PRODUCED: &str = "baton_bus_produced_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(PRODUCED, Unit::Count, "Records acknowledged by the broker, by topic.");
}
