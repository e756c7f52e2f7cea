//! Metric names of this crate, declared once, and their descriptions for `/metrics`.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Claim verdicts: granted, stale, leased, terminal, waiting, ahead, missing, newer_schema.
pub const CLAIMS: &str = "baton_worker_claims_total";

/// Bytes of run state a granted claim read: the checkpoint (head and spec) and the step
/// records its planner may be shown (bounded by the planners' `history_max_steps`).
pub const CLAIM_BYTES: &str = "baton_worker_claim_bytes";

/// How steps ended, by outcome: continued (committed, the run kept its worker), or how the slice
/// ended (advanced, retried, waiting, finished, dead_lettered, fenced, abandoned, …).
pub const STEPS: &str = "baton_worker_steps_total";

/// Plan to result of one step (its commit not included).
pub const STEP_DURATION: &str = "baton_worker_step_duration_seconds";

/// Steps a run executed per claim before it was handed on (commit-and-continue).
pub const SLICE_STEPS: &str = "baton_worker_slice_steps";

/// Time per step phase: claim, execute, commit, hand_on, produce_events, produce_task.
pub const PHASE: &str = "baton_worker_phase_seconds";

/// Task record produced to received by a worker.
pub const TASK_WAIT: &str = "baton_worker_task_wait_seconds";

/// Retries produced, by tier.
pub const RETRIES: &str = "baton_worker_retries_total";

/// Runs dead-lettered after exhausting retries.
pub const DEAD_LETTERS: &str = "baton_worker_dead_letters_total";

/// Steps abandoned because their lease was gone.
pub const LEASES_LOST: &str = "baton_worker_leases_lost_total";

/// Steps handed back on drain.
pub const LEASES_RELEASED: &str = "baton_worker_leases_released_total";

/// Task records that were not a Task (copied to the DLQ topic with the reason, then skipped).
pub const TASKS_UNDECODABLE: &str = "baton_worker_tasks_undecodable_total";

/// Earlier instances of this worker's name taken over at start (declared dead, their
/// partitions taken).
pub const PREDECESSORS_TAKEN_OVER: &str = "baton_worker_predecessors_taken_over_total";

/// Times this worker gave its partitions back because the broker did not answer.
pub const PARTITIONS_GIVEN_UP: &str = "baton_worker_partitions_given_up_total";

/// Partitions of the lane's task topic this worker consumes now.
pub const PARTITIONS_HELD: &str = "baton_worker_partitions_held";

/// A manifest tool's circuit breaker as this worker last saw it: 0 closed, 1 half open, 2 open.
pub const BREAKER_STATE: &str = "baton_tool_breaker_state";

/// Calls held because their tool's circuit breaker was open.
pub const BREAKER_REJECTIONS: &str = "baton_tool_breaker_rejections_total";

/// Registers the descriptions with the installed recorder (the runtime's too: it runs here).
pub fn describe() {
    baton_runtime::metric_definitions::describe();
    describe_counter!(
        CLAIMS,
        Unit::Count,
        "Claim verdicts: granted, stale, leased, terminal, waiting, ahead, missing, newer_schema."
    );
    describe_histogram!(
        CLAIM_BYTES,
        Unit::Bytes,
        "Bytes of run state a granted claim read: checkpoint, spec and the step records its planner may be shown."
    );
    describe_counter!(STEPS, Unit::Count, "How claimed steps ended, by outcome.");
    describe_histogram!(STEP_DURATION, Unit::Seconds, "Plan to result of one step (its commit not included).");
    describe_histogram!(SLICE_STEPS, Unit::Count, "Steps a run executed per claim before it was handed on.");
    describe_histogram!(
        PHASE,
        Unit::Seconds,
        "Time per step phase: claim, execute, commit, hand_on, produce_events, produce_task."
    );
    describe_histogram!(TASK_WAIT, Unit::Seconds, "Task record produced to received by a worker.");
    describe_counter!(RETRIES, Unit::Count, "Retries produced, by tier.");
    describe_counter!(DEAD_LETTERS, Unit::Count, "Runs dead-lettered after exhausting retries.");
    describe_counter!(LEASES_LOST, Unit::Count, "Steps abandoned because their lease was gone.");
    describe_counter!(LEASES_RELEASED, Unit::Count, "Steps handed back on drain.");
    describe_counter!(
        TASKS_UNDECODABLE,
        Unit::Count,
        "Task records that were not a Task (copied to the DLQ topic, skipped)."
    );
    describe_counter!(
        PREDECESSORS_TAKEN_OVER,
        Unit::Count,
        "Earlier instances of this worker's name taken over at start (declared dead, their partitions taken)."
    );
    describe_counter!(
        PARTITIONS_GIVEN_UP,
        Unit::Count,
        "Times this worker gave its partitions back because the broker did not answer."
    );
    describe_gauge!(PARTITIONS_HELD, "Partitions of the lane's task topic this worker consumes now.");
    describe_gauge!(BREAKER_STATE, "A manifest tool's circuit breaker as last seen: 0 closed, 1 half open, 2 open.");
    describe_counter!(BREAKER_REJECTIONS, Unit::Count, "Calls held because their tool's circuit breaker was open.");
    for name in
        [DEAD_LETTERS, LEASES_LOST, LEASES_RELEASED, TASKS_UNDECODABLE, PREDECESSORS_TAKEN_OVER, PARTITIONS_GIVEN_UP]
    {
        metrics::counter!(name).absolute(0);
    }
    for result in ["granted", "stale", "leased", "terminal", "waiting", "ahead", "missing", "newer_schema"] {
        metrics::counter!(CLAIMS, "result" => result).absolute(0);
    }
}
