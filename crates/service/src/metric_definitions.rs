//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// Tool manifest reloads, by result: loaded, rejected.
pub const MANIFEST_RELOADS: &str = "baton_tools_manifest_reloads_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(MANIFEST_RELOADS, Unit::Count, "Tool manifest reloads, by result: loaded, rejected.");
}
