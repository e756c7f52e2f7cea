//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// SubmitRun outcomes: admitted or deduplicated.
pub const SUBMITS: &str = "baton_gateway_submits_total";

/// CancelRun by the state the run was found in.
pub const CANCELS: &str = "baton_gateway_cancels_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(SUBMITS, Unit::Count, "SubmitRun outcomes: admitted or deduplicated.");
    describe_counter!(CANCELS, Unit::Count, "CancelRun by the state the run was found in.");
}
