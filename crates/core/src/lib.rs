//! Baton's domain logic: run statuses, spec admission, the tool catalog, the judging of
//! proposals, budgets, and the step state machine.
//!
//! Everything here is pure: no I/O, no async, no clocks (callers pass `now_ms`). The services
//! decide *when* to call these functions; this crate decides *what* a run may do next.

pub mod admission;
pub mod approval;
pub mod budget;
pub mod catalog;
pub mod events;
pub mod judge;
pub mod lanes;
pub mod machine;
pub mod plan;
pub mod proposal;
pub mod reconcile;
pub mod redact;
pub mod repeats;
pub mod retry;
pub mod run_id;
pub mod status;
pub mod stop;
pub mod tools;

pub use baton_proto::v1;

/// Version of the `RunState` checkpoint layout written by this build. 1: spec and steps inline;
/// 2: the head only (spec and step history in their own keys, see `baton-store`'s layout).
pub const SCHEMA_VERSION: u32 = 2;

/// The idempotency key a tool receives for step `step` of run `run_id`: `<run>:<step>`.
///
/// Retries of the same step keep the same key, so an effect recorded under it is never repeated.
pub fn step_idempotency_key(run_id: &str, step: u32) -> String {
    format!("{run_id}:{step}")
}

/// The task that asks a worker of the run's lane to execute `step`, attempt `attempt`, no
/// earlier than `not_before_ms` (0: now).
pub fn advance_task(state: &v1::RunState, step: u32, attempt: u32, not_before_ms: i64) -> v1::Task {
    v1::Task {
        run_id: state.run_id.clone(),
        step,
        attempt,
        kind: v1::TaskKind::Advance as i32,
        lane: state.lane.clone(),
        not_before_ms,
        tenant: state.tenant.clone(),
        traceparent: state.traceparent.clone(),
    }
}

/// The task for the step the checkpoint names next: what recovery and hand-back re-dispatch.
pub fn current_task(state: &v1::RunState) -> v1::Task {
    advance_task(state, state.next_step, state.attempt, 0)
}
