//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, Unit};

/// SubmitRun outcomes: admitted or deduplicated.
pub const SUBMITS: &str = "baton_gateway_submits_total";

/// CancelRun by the state the run was found in.
pub const CANCELS: &str = "baton_gateway_cancels_total";

/// ResolveApproval outcomes: approved, denied, refused (stale, mismatched, not waiting).
pub const APPROVALS: &str = "baton_gateway_approvals_total";

/// ReconcileRun by decision: done, not_done, fail.
pub const RECONCILIATIONS: &str = "baton_gateway_reconciliations_total";

/// Operator switch changes, by switch.
pub const SWITCH_CHANGES: &str = "baton_gateway_switch_changes_total";

/// Submits refused because the tenant is at its cap on active runs.
pub const CAPPED: &str = "baton_gateway_capped_submits_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(SUBMITS, Unit::Count, "SubmitRun outcomes: admitted or deduplicated.");
    describe_counter!(CANCELS, Unit::Count, "CancelRun by the state the run was found in.");
    describe_counter!(APPROVALS, Unit::Count, "ResolveApproval outcomes: approved, denied, refused.");
    describe_counter!(RECONCILIATIONS, Unit::Count, "ReconcileRun by decision: done, not_done, fail.");
    describe_counter!(SWITCH_CHANGES, Unit::Count, "Operator switch changes, by switch.");
    describe_counter!(CAPPED, Unit::Count, "Submits refused because the tenant is at its cap on active runs.");
    for result in ["admitted", "deduplicated"] {
        metrics::counter!(SUBMITS, "result" => result).absolute(0);
    }
    for result in ["approved", "denied", "refused"] {
        metrics::counter!(APPROVALS, "result" => result).absolute(0);
    }
    for decision in ["done", "not_done", "fail"] {
        metrics::counter!(RECONCILIATIONS, "decision" => decision).absolute(0);
    }
    metrics::counter!(CAPPED).absolute(0);
}
