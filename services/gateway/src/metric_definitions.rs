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

/// Submits refused by admission control, by the limit that refused them.
pub const REFUSED: &str = "baton_gateway_refused_submits_total";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(SUBMITS, Unit::Count, "SubmitRun outcomes: admitted or deduplicated.");
    describe_counter!(CANCELS, Unit::Count, "CancelRun by the state the run was found in.");
    describe_counter!(APPROVALS, Unit::Count, "ResolveApproval outcomes: approved, denied, refused.");
    describe_counter!(RECONCILIATIONS, Unit::Count, "ReconcileRun by decision: done, not_done, fail.");
    describe_counter!(SWITCH_CHANGES, Unit::Count, "Operator switch changes, by switch.");
    describe_counter!(REFUSED, Unit::Count, "Submits refused by admission control, by limit.");
    for result in ["admitted", "deduplicated"] {
        metrics::counter!(SUBMITS, "result" => result).absolute(0);
    }
    for result in ["approved", "denied", "refused"] {
        metrics::counter!(APPROVALS, "result" => result).absolute(0);
    }
    for decision in ["done", "not_done", "fail"] {
        metrics::counter!(RECONCILIATIONS, "decision" => decision).absolute(0);
    }
    for (limit, _) in baton_service::switches::name::LIMITS {
        metrics::counter!(REFUSED, "limit" => limit).absolute(0);
    }
}
