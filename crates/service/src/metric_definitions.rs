//! Metric names of this crate, declared once, and their descriptions for `/metrics`. Every
//! service exports these: its own health, and the manifest it holds.

use metrics::{describe_counter, describe_gauge, Unit};

/// Tool manifest reloads, by result: loaded, rejected.
pub const MANIFEST_RELOADS: &str = "baton_tools_manifest_reloads_total";

/// Runs that ended, by status, stop reason code and lane (`completed`, `tool_error`, `max_tokens`, …),
/// counted by whichever service committed the end.
pub const RUNS_FINISHED: &str = "baton_runs_finished_total";

/// 1 while the service is ready (`/readyz` answers 200), else 0.
pub const READY: &str = "baton_service_ready";

/// Seconds since the service's main loop last went round (a stuck loop grows it).
pub const LOOP_TICK_AGE: &str = "baton_service_loop_tick_age_seconds";

/// Always 1, labelled with the service and the Baton version it runs (`version`, and `build`:
/// the commit or image tag baked in as `BATON_BUILD` at compile time, else `dev`). Counting by
/// `version` shows which versions are in use during a rollout.
pub const BUILD_INFO: &str = "baton_build_info";

/// Sets [`BUILD_INFO`] for `service`.
pub fn set_build_info(service: &str) {
    let build = option_env!("BATON_BUILD").unwrap_or("dev");
    metrics::gauge!(BUILD_INFO, "service" => service.to_string(), "version" => env!("CARGO_PKG_VERSION"), "build" => build)
        .set(1.0);
}

/// Counts a run that ended as `state` says (call once, after its final commit).
pub fn count_finished(state: &baton_core::v1::RunState) {
    let status = baton_core::status::name(state.status());
    let reason = state.stop_reason.as_ref().map_or("", |r| r.code.as_str());
    // Reason codes are the runtime's own, a small fixed set; anything else is folded.
    let reason = if reason.len() <= 32 && reason.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        reason.to_string()
    } else {
        "other".to_string()
    };
    // Lanes are operator-defined (a bounded set): comparing them is how a canary is judged.
    let lane = state.lane.clone();
    metrics::counter!(RUNS_FINISHED, "status" => status, "reason" => reason, "lane" => lane).increment(1);
}

/// Registers the descriptions with the installed recorder, and the series with zero values.
pub fn describe() {
    baton_store::metric_definitions::describe();
    describe_counter!(MANIFEST_RELOADS, Unit::Count, "Tool manifest reloads, by result: loaded, rejected.");
    describe_counter!(RUNS_FINISHED, Unit::Count, "Runs that ended, by status and stop reason code.");
    describe_gauge!(BUILD_INFO, "Always 1: the service and the Baton version and build it runs.");
    describe_gauge!(READY, "1 while the service is ready (/readyz answers 200), else 0.");
    describe_gauge!(LOOP_TICK_AGE, Unit::Seconds, "Seconds since the service's main loop last went round.");
    for result in ["loaded", "rejected"] {
        metrics::counter!(MANIFEST_RELOADS, "result" => result).absolute(0);
    }
    metrics::gauge!(READY).set(0.0);
    metrics::counter!(RUNS_FINISHED, "status" => "succeeded", "reason" => "completed", "lane" => "main").absolute(0);
    metrics::gauge!(LOOP_TICK_AGE).set(0.0);
}
