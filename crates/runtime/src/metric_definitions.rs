//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, describe_histogram, Unit};

/// Planner calls, by planner (`model`, `grpc`) and outcome (`ok`, `retryable`, `fatal`).
pub const PLANNER_CALLS: &str = "baton_planner_calls_total";

/// Duration of one planner call, by planner.
pub const PLANNER_DURATION: &str = "baton_planner_call_duration_seconds";

/// Model tokens spent, by direction (`input`, `output`) and lane.
pub const TOKENS: &str = "baton_model_tokens_total";

/// Model cost spent, in millionths of the price unit, by lane.
pub const COST: &str = "baton_model_cost_micros_total";

/// Proposals judged, by verdict (`accepted`, `rejected`, `drafted`) and reason code.
pub const PROPOSALS: &str = "baton_proposals_total";

/// Tool calls, by tool and outcome (`completed`, `retryable`, `fatal`, `timeout`).
pub const TOOL_CALLS: &str = "baton_tool_calls_total";

/// Duration of one tool call, by tool.
pub const TOOL_DURATION: &str = "baton_tool_call_duration_seconds";

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(
        PLANNER_CALLS,
        Unit::Count,
        "Planner calls, by planner (model, grpc) and outcome (ok, retryable, fatal)."
    );
    describe_histogram!(PLANNER_DURATION, Unit::Seconds, "Duration of one planner call, by planner.");
    describe_counter!(TOKENS, Unit::Count, "Model tokens spent, by direction (input, output).");
    describe_counter!(COST, Unit::Count, "Model cost spent, in millionths of the price unit.");
    describe_counter!(
        PROPOSALS,
        Unit::Count,
        "Proposals judged, by verdict (accepted, rejected, drafted) and reason code."
    );
    describe_counter!(
        TOOL_CALLS,
        Unit::Count,
        "Tool calls, by tool and outcome (completed, retryable, fatal, timeout)."
    );
    describe_histogram!(TOOL_DURATION, Unit::Seconds, "Duration of one tool call, by tool.");
    for direction in ["input", "output"] {
        metrics::counter!(TOKENS, "direction" => direction, "lane" => "main").absolute(0);
    }
    metrics::counter!(COST, "lane" => "main").absolute(0);
}
